"""workbook.containers without an engine: the engine's timestamps (waits are tested where they run)."""

from datetime import datetime, timezone

import pytest

from workbook.containers import when


@pytest.mark.parametrize("stamp, expected", [
    ("2026-12-04T05:01:02.123456789Z", datetime(2026, 12, 4, 5, 1, 2, 123456, timezone.utc)),  # nanoseconds cut
    ("2026-12-04T05:01:02Z", datetime(2026, 12, 4, 5, 1, 2, tzinfo=timezone.utc)),
    ("2026-12-04T06:01:02.5+01:00", datetime(2026, 12, 4, 5, 1, 2, 500000, timezone.utc)),  # a health probe's zone
    ("0001-01-01T00:00:00Z", datetime.min.replace(tzinfo=timezone.utc)),  # never (FinishedAt of a new container)
    (None, datetime.min.replace(tzinfo=timezone.utc)),  # no LastTagTime
    ("", datetime.min.replace(tzinfo=timezone.utc)),
])
def test_when_reads_the_engine_s_timestamps(stamp, expected):
    assert when(stamp) == expected
