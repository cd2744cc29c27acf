"""List cleaning: which addresses of a list are worth mailing, and why the others are not.

    from bounced import clean

    for row in clean(["ann@example.com", "bob@gmial.com"], suppressions=sup):
        print(row.address, row.status, row.reason, row.detail)

`clean` (bounced.clean.pipeline) streams verdicts for rows of any size;
bounced.clean.reading opens files as spreadsheets write them and
bounced.clean.writing writes the results. The checks themselves are pure
(bounced.clean.checks); DNS is bounced.clean.dns.
"""

from bounced.clean.checks import CleanReason, Mode, Status
from bounced.clean.pipeline import CleanOptions, Cleaned, Record, Unreadable, clean

__all__ = ["CleanOptions", "CleanReason", "Cleaned", "Mode", "Record", "Status", "Unreadable", "clean"]
