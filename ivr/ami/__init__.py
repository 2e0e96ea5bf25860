"""Call logs for supervisors (R19), from Asterisk's manager interface (AMI)."""
