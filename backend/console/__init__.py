"""The staff console: Persian, right-to-left pages served by the backend (issue 10)."""
