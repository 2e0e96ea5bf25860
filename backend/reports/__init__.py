"""Reports for staff, the weekly and monthly report notices, and the public page (R19-R21).

Every figure is computed in the database (GROUP BY over case_file and referral), never by loading
cases into Python: a month of a busy hotline is tens of thousands of cases."""
