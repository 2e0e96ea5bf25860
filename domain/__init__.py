"""The pure core both sides import: national ID, tracking codes, case states, deadlines, service
profiles, Jalali dates, digits. No database, no web framework, no I/O beyond reading profile files."""
