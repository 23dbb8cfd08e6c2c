"""The diff muster's core makes, done by DuckDB and by Polars on the same data.

Input: the CSVs `examples/peer_diff.rs` exports (source.csv, target.csv,
links.csv) and its muster.json (muster's own timings and plan counts).
The tables are loaded before any timing (preloaded, as the issue asks);
each engine runs with its default thread count. What is timed is the whole
diff, materialised as one row per action (id, action):

- create:     a live source person with no link and no unlinked account of
              the same employee number or (case-folded) work email;
- update:     linked, both active, an owned field differs (the manager
              compared through the link table, e-mails case-folded);
- deactivate: linked, account active, person no longer live (end date
              passed) or gone from the source;
- reactivate: linked, account inactive, person live.

"Live" = active, started (start date <= today) and not ended (end date >=
today), today = 2026-03-02 as in `src/synthetic.rs`. muster does more per
field (trim + Unicode NFKC before comparing, look-alike checks on keys);
the peers compare raw text, which favours them.

Usage: peer_diff.py DIR [RUNS]   (prints a table, exits 1 if any engine's
counts differ from muster's)
"""

import datetime
import json
import statistics
import sys
import time

import duckdb
import polars as pl

TODAY = "2026-03-02"
COMPARED = ["employee_number", "given_name", "family_name", "birth_date",
            "start_date", "end_date", "job_title", "gender"]


def duck_sql():
    differs = " OR ".join(f"s.{c} IS DISTINCT FROM t.{c}" for c in COMPARED)
    return f"""
    WITH s AS (
      SELECT *, active AND (start_date IS NULL OR start_date <= DATE '{TODAY}')
                AND (end_date IS NULL OR end_date >= DATE '{TODAY}') AS live
      FROM source),
    unlinked_t AS (SELECT * FROM target ANTI JOIN links ON links.target_id = target.id),
    paired AS (
      SELECT s.*, l.target_id AS acct, t.active AS t_active,
             ({differs}
              OR lower(s.work_email) IS DISTINCT FROM lower(t.work_email)
              OR m.target_id IS DISTINCT FROM t.manager_id) AS differs
      FROM s
      LEFT JOIN links l ON l.source_id = s.id
      LEFT JOIN target t ON t.id = l.target_id
      LEFT JOIN links m ON m.source_id = s.manager_id)
    SELECT id, 'create' AS action FROM paired p
      WHERE acct IS NULL AND live
        AND NOT EXISTS (SELECT 1 FROM unlinked_t u WHERE u.employee_number = p.employee_number)
        AND NOT EXISTS (SELECT 1 FROM unlinked_t u WHERE lower(u.work_email) = lower(p.work_email))
    UNION ALL
    SELECT id, CASE
        WHEN NOT live AND t_active THEN 'deactivate'
        WHEN live AND NOT t_active THEN 'reactivate'
        ELSE 'update' END
      FROM paired
      WHERE acct IS NOT NULL AND ((live <> t_active) OR (live AND t_active AND differs))
    UNION ALL
    SELECT l.target_id, 'deactivate' FROM links l
      JOIN target t ON t.id = l.target_id
      ANTI JOIN source ON source.id = l.source_id
      WHERE t.active
    """


def run_duckdb(d, runs):
    con = duckdb.connect()
    for name in ("source", "target", "links"):
        con.execute(f"CREATE TABLE {name} AS SELECT * FROM read_csv_auto('{d}/{name}.csv', all_varchar=false)")
    sql = duck_sql()
    times, counts = [], {}
    for _ in range(runs):
        con.execute("DROP TABLE IF EXISTS actions")
        t0 = time.perf_counter()
        con.execute(f"CREATE TABLE actions AS {sql}")
        times.append(time.perf_counter() - t0)
    for action, n in con.execute("SELECT action, count(*) FROM actions GROUP BY action").fetchall():
        counts[action] = n
    return times, counts


def polars_diff(source, target, links):
    s = source.with_columns(
        live=pl.col("active")
        & (pl.col("start_date").is_null() | (pl.col("start_date") <= pl.lit(datetime.date.fromisoformat(TODAY))))
        & (pl.col("end_date").is_null() | (pl.col("end_date") >= pl.lit(datetime.date.fromisoformat(TODAY)))))
    t = target.rename({c: f"t_{c}" for c in target.collect_schema().names() if c != "id"})
    mgr = links.rename({"source_id": "manager_id", "target_id": "manager_acct"})
    paired = (s.join(links, left_on="id", right_on="source_id", how="left")
               .join(t, left_on="target_id", right_on="id", how="left")
               .join(mgr, on="manager_id", how="left"))
    differs = pl.lit(False)
    for c in COMPARED:
        differs = differs | pl.col(c).ne_missing(pl.col(f"t_{c}"))
    differs = (differs
               | pl.col("work_email").str.to_lowercase().ne_missing(pl.col("t_work_email").str.to_lowercase())
               | pl.col("manager_acct").ne_missing(pl.col("t_manager_id")))
    unlinked_t = target.join(links, left_on="id", right_on="target_id", how="anti")
    creates = (paired.filter(pl.col("target_id").is_null() & pl.col("live"))
               .join(unlinked_t.select("employee_number"), on="employee_number", how="anti")
               .join(unlinked_t.select(pl.col("work_email").str.to_lowercase().alias("email_key")),
                     left_on=pl.col("work_email").str.to_lowercase(), right_on="email_key", how="anti")
               .select("id", action=pl.lit("create")))
    linked = (paired.filter(pl.col("target_id").is_not_null()
                            & ((pl.col("live") != pl.col("t_active"))
                               | (pl.col("live") & pl.col("t_active") & differs)))
              .select("id", action=pl.when(~pl.col("live") & pl.col("t_active")).then(pl.lit("deactivate"))
                      .when(pl.col("live") & ~pl.col("t_active")).then(pl.lit("reactivate"))
                      .otherwise(pl.lit("update"))))
    gone = (links.join(source.select("id"), left_on="source_id", right_on="id", how="anti")
            .join(target.filter(pl.col("active")), left_on="target_id", right_on="id", how="inner")
            .select(id=pl.col("target_id"), action=pl.lit("deactivate")))
    return pl.concat([creates, linked, gone])


def run_polars(d, runs):
    text = {c: pl.Utf8 for c in ("id", "employee_number", "given_name", "family_name", "work_email", "job_title", "gender", "department_id", "manager_id")}
    dates = {c: pl.Date for c in ("birth_date", "start_date", "end_date")}
    opts = dict(schema_overrides={**text, **dates, "active": pl.Boolean})
    source = pl.read_csv(f"{d}/source.csv", **opts).lazy()
    target = pl.read_csv(f"{d}/target.csv", **opts).lazy()
    links = pl.read_csv(f"{d}/links.csv", schema_overrides={"source_id": pl.Utf8, "target_id": pl.Utf8}).lazy()
    # Preloaded: materialise the frames in memory before timing.
    source, target, links = (f.collect().lazy() for f in (source, target, links))
    times, out = [], None
    for _ in range(runs):
        t0 = time.perf_counter()
        out = polars_diff(source, target, links).collect()
        times.append(time.perf_counter() - t0)
    counts = dict(out.group_by("action").len().iter_rows())
    return times, counts


def main():
    d = sys.argv[1]
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    with open(f"{d}/muster.json") as f:
        muster = json.load(f)
    expected = {
        "create": muster["counts"]["Create"],
        "update": muster["counts"]["Update"],
        "deactivate": muster["counts"]["Deactivate"],
        "reactivate": muster["counts"]["Reactivate"],
    }
    duck_t, duck_c = run_duckdb(d, runs)
    pol_t, pol_c = run_polars(d, runs)
    duck, pol = statistics.median(duck_t), statistics.median(pol_t)
    full, plan = muster["prepare_plan_s"], muster["plan_s"]
    print(f"people: {muster['people']}, runs: {runs} (medians), duckdb {duckdb.__version__}, polars {pl.__version__}")
    print(f"{'engine':<32} {'median s':>9} {'÷ DuckDB':>9}  counts")
    print(f"{'muster prepare + plan (1 thread)':<32} {full:>9.3f} {full / duck:>9.2f}  {expected}")
    print(f"{'muster plan alone (1 thread)':<32} {plan:>9.3f} {plan / duck:>9.2f}")
    print(f"{'DuckDB (default threads)':<32} {duck:>9.3f} {1.0:>9.2f}  {duck_c}")
    print(f"{'Polars (default threads)':<32} {pol:>9.3f} {pol / duck:>9.2f}  {pol_c}")
    ok = True
    for name, c in (("DuckDB", duck_c), ("Polars", pol_c)):
        got = {k: c.get(k, 0) for k in expected}
        if got != expected:
            print(f"MISMATCH: {name} found {got}, muster {expected}")
            ok = False
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
