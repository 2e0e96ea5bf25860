"""A real Asterisk for development, CI and small installs: Debian's package in a Debian sid root."""
