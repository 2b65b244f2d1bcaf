"""The human-readable lines of scripts/bench_catchup.py's report, and its memory aim."""

from __future__ import annotations

from typing import Any

#: The aim for the joiner's and its writer process's peak resident memory together (issue
#: 20, at 2.1M entries): 400 MB.
MEMORY_AIM_BYTES = 400_000_000


def _small_baseline_lines(r: dict[str, Any]) -> list[str]:
    small = r["baseline_sqlite_1000_row_batches"]
    if small is None:
        return []
    share = r["catchup"]["entries_per_s"] / small["entries_per_s"]
    return [
        f"      SQLite, {small['rows_per_transaction']:,}-row txns {small['seconds']:.2f} s"
        f"  {small['entries_per_s']:,} entries/s  (catch-up is {100 * share:.0f}% of it)"
    ]


def lines_of(r: dict[str, Any]) -> list[str]:
    c, a, big = r["catchup"], r["baseline_sqlite_page_batches"], r["baseline_sqlite_big_batches"]
    w, m, j = r["wire"], r["memory_kib"], r["baseline_sqlite_joiner_batches"]
    cpu = r["cpu_us_per_entry_while_pulling"]
    return [
        f"catch-up of {r['entries']:,} {r['signal_type']} entries, pages of {r['page_size']}",
        f"  end to end           {c['seconds']:10.2f} s  {c['entries_per_s']:>10,} entries/s"
        f"  (joiner start {c['joiner_start_s']:.2f} s; roots equal)",
        f"  (a) SQLite, page txns {a['seconds']:9.2f} s  {a['entries_per_s']:>10,} entries/s"
        f"  -> catch-up is {100 * c['share_of_sqlite_baseline']:.0f}% of it (aim >= 80%)",
        *_small_baseline_lines(r),
        f"      SQLite, {j['rows_per_transaction']:,}-row txns {j['seconds']:.2f} s"
        f"  {j['entries_per_s']:,} entries/s: the joiner's mean transaction was"
        f" {c['mean_entries_per_transaction']:,} entries; catch-up is"
        f" {100 * c['share_of_sqlite_at_joiner_transactions']:.0f}% of it",
        f"      SQLite, {big['rows_per_transaction']:,}-row txns {big['seconds']:.2f} s"
        f"  {big['entries_per_s']:,} entries/s",
        f"  (b) Ed25519 verify    {r['baseline_verify_per_entry']['verifications_per_s']:>21,} /s"
        f"  -> catch-up is {c['multiple_of_verify_ceiling']:.2f}x it (aim >= 5x)",
        f"  protocol CPU alone    {r['protocol_cpu_only']['entries_per_s']:>21,} entries/s",
        f"  wire: {w['down_per_entry']} B/entry down, {w['total_per_entry']} B/entry both ways;"
        f" encoded entry {r['encoded_entry_bytes']} B (x{w['overhead_vs_encoded']})",
        f"  CPU while pulling: joiner {cpu['joiner']} µs/entry, its writer"
        f" {cpu['joiner_writer']} µs/entry, source {cpu['source']} µs/entry",
        f"  memory: joiner {m['joiner_rss'] / 1024:.0f} MiB resident holding the entries"
        f" (peak {m['joiner_peak_rss'] / 1024:.0f} MiB, idle {m['joiner_idle_rss'] / 1024:.0f}"
        f" MiB), its SQLite writer process {m['joiner_writer_rss'] / 1024:.0f} MiB;"
        f" source {m['source_rss'] / 1024:.0f} MiB",
        f"  peak memory: joiner {m['joiner_peak_rss'] / 1024:.0f} MiB + its writer"
        f" {m['joiner_writer_peak_rss'] / 1024:.0f} MiB ="
        f" {m['joiner_and_writer_peak_rss'] * 1024 / 1e6:.0f} MB"
        f" (aim < {MEMORY_AIM_BYTES / 1e6:.0f} MB:"
        f" {'met' if r['aims_met']['joiner_and_writer_peak_under_400mb'] else 'missed'});"
        f" largest sampled sum {m['joiner_and_writer_sampled_peak_rss'] / 1024:.0f} MiB",
    ]
