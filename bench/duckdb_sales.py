"""DuckDB doing weir's sales job, for bench/process.sh: read the CSV with typed columns (rows
that do not convert are dropped), write NDJSON with revenue = quantity * price, and aggregate
revenue and quantity per product (count, sum, min, max, avg).

    python bench/duckdb_sales.py IN.csv OUT.ndjson [THREADS]

Prints the number of rows kept. The CSV is read once into a table, as weir reads it once.
"""
import sys

import duckdb

src, dst = sys.argv[1], sys.argv[2]
threads = int(sys.argv[3]) if len(sys.argv) > 3 else 1
con = duckdb.connect()
con.execute(f"SET threads={threads}")
con.execute("SET preserve_insertion_order=true")
con.execute(
    """
    CREATE TABLE sales AS
    SELECT *, quantity * price AS revenue
    FROM read_csv(?, header = true, ignore_errors = true, columns = {
        'order_id': 'VARCHAR', 'customer_name': 'VARCHAR', 'product': 'VARCHAR',
        'quantity': 'BIGINT', 'price': 'DOUBLE', 'date': 'DATE'})
    """,
    [src],
)
con.execute(f"COPY sales TO '{dst}' (FORMAT json)")
groups = con.execute(
    """
    SELECT product, count(*), sum(revenue), min(revenue), max(revenue), avg(revenue),
           sum(quantity), min(quantity), max(quantity), avg(quantity)
    FROM sales GROUP BY product ORDER BY product
    """
).fetchall()
assert groups
print(con.execute("SELECT count(*) FROM sales").fetchone()[0])
