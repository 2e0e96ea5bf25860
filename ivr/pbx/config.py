"""The project's Asterisk configuration (asterisk_conf/), with this install's values filled in."""

from __future__ import annotations

from pathlib import Path

from ivr.settings import PROJECT_ROOT, IvrSettings

CONF_DIR = PROJECT_ROOT / "asterisk_conf"
# Development only: test phones without authentication (sipp, softphones), included by pjsip.conf
# when present. A production install never writes them (and removes a stale copy).
DEV_DIR = CONF_DIR / "dev"


def values(settings: IvrSettings, *, srv: str, moddir: str) -> dict[str, str]:
    if not settings.ami_secret:
        raise ValueError("DIDEHBAN_AMI_SECRET must be set (`didehban keys` prints one)")
    return {
        "SRV": srv,
        "MODDIR": moddir,
        "SYSTEMNAME": settings.pbx_system_name,
        "FASTAGI": f"agi://{settings.fastagi_host}:{settings.fastagi_port}",
        "SIP_BIND": f"{settings.sip_host}:{settings.sip_port}",
        "MEDIA_ADDRESS": settings.sip_host,
        "CARRIER_HOST": settings.carrier_host,
        "AMI_BIND": settings.ami_host,
        "AMI_PORT": str(settings.ami_port),
        "AMI_USER": settings.ami_username,
        "AMI_SECRET": settings.ami_secret,
        "RTP_START": str(settings.rtp_start),
        "RTP_END": str(settings.rtp_end),
        "TEST_OPERATOR_PORT": str(settings.sip_port + 1),
    }


def render(settings: IvrSettings, *, srv: str, moddir: str, test_phones: bool = False) -> dict[str, str]:
    """File name -> text, every @@NAME@@ replaced; an unknown placeholder is an error, not a blank.
    `test_phones` adds the development-only files (asterisk_conf/dev/)."""
    filled = values(settings, srv=srv, moddir=moddir)
    rendered = {}
    paths = sorted(CONF_DIR.glob("*.conf")) + (sorted(DEV_DIR.glob("*.conf")) if test_phones else [])
    for path in paths:
        text = path.read_text(encoding="utf-8")
        for name, value in filled.items():
            text = text.replace(f"@@{name}@@", value)
        if "@@" in text:
            missing = text.split("@@")[1]
            raise ValueError(f"{path.name}: no value for @@{missing}@@")
        rendered[path.name] = text
    return rendered


def install(
    settings: IvrSettings, etc_dir: Path, *, srv: str, moddir: str, test_phones: bool = False
) -> list[str]:
    etc_dir.mkdir(parents=True, exist_ok=True)
    if not test_phones:
        for dev_file in DEV_DIR.glob("*.conf"):
            (etc_dir / dev_file.name).unlink(missing_ok=True)
    written = []
    for name, text in render(settings, srv=srv, moddir=moddir, test_phones=test_phones).items():
        target = etc_dir / name
        target.write_text(text, encoding="utf-8")
        if name == "manager.conf":
            target.chmod(0o600)  # it holds the AMI secret
        written.append(name)
    return written
