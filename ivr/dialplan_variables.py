"""Every channel variable the dial plan, the call flows and the AMI listener share, named once.

The dial plan (asterisk_conf/extensions.conf) reads and writes the same names; a rename here is a
rename there. Modelled on Wazo's dialplan_variables.py.
"""

from __future__ import annotations

# Set by the dial plan.
SERVICE = "SERVICE"  # the short number the call came in on (1482, 111)
# The fallback message's path without extension: <service>-<uniqueid>. The caller's digits are kept
# off the name, in a sidecar <path>.caller that the dial plan writes (ivr.pbx.fallback reads it).
FALLBACK_FILE = "FALLBACK_FILE"
MIXMONITOR_FILENAME = "MIXMONITOR_FILENAME"  # the whole-call recording, as Asterisk sees it

# Set by the flows, read back by the dial plan and the call log.
DIDEHBAN_SERVICE = "DIDEHBAN_SERVICE"
OUTCOME = "DIDEHBAN_OUTCOME"  # registered, status, message, operator, goodbye, failed, hangup, fallback
TRACKING_CODE = "DIDEHBAN_TRACKING_CODE"
PATH = "DIDEHBAN_PATH"  # the menus the caller went through: "menu:1>kind:1>..."
MESSAGE_FILE = "DIDEHBAN_MESSAGE_FILE"  # the caller's message, relative to the recordings folder

# Which call-log field each variable fills (ivr.ami.book).
CALL_LOG_FIELDS: dict[str, str] = {
    SERVICE: "service",
    DIDEHBAN_SERVICE: "service",
    OUTCOME: "outcome",
    TRACKING_CODE: "tracking_code",
    PATH: "path",
    MESSAGE_FILE: "message_file",
    MIXMONITOR_FILENAME: "call_file",
}
