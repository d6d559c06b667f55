"""The historian: every tag's history on disk, beyond what Redis keeps.

Redis holds a recent window per tag at full rate (sl:hist:<tag>); the historian follows the feed
sl:samples and keeps everything else in Parquet files under <data_dir>/historian/:

- sample_rows.py: SampleRows, the parallel arrays every write takes.
- paths.py: the layout (segments per source-time hour, compacted hours and days) and file names,
  which carry the feed position (entry id) so the cursor survives restarts.
- parquet_files.py: atomic writes of sorted files with a per-tag index, and reading a tag's rows.
- rollups.py: 1-minute rollups (min/max with their times, first/last, count, bad_count).
- storage.py: write_segment, write_compacted, saved_cursor, disk_bytes (and compact, prune).
- compaction.py, retention.py: merging closed partitions; deleting what retention no longer keeps.
- reader.py: HistoryReader, what web/history_query.py reads (raw, rollup, estimates, carry-in).

Importing this package does no I/O.
"""
