# Reads every part of a Sightline data directory with pyarrow (an independent Parquet
# implementation), decodes metric values with the documented formula and checks the
# row order. Usage: python check_parts.py DATA_DIR   (needs `pip install pyarrow`)
import glob, json, sys
import pyarrow.parquet as pq, pyarrow.compute as pc
root = sys.argv[1]
n = 0
for f in sorted(glob.glob(root + "/metrics/*/*/*.parquet")):
    t = pq.read_table(f)
    md = pq.ParquetFile(f).metadata
    enc = {md.row_group(0).column(i).path_in_schema: md.row_group(0).column(i).encodings for i in range(md.num_columns)}
    d = t.to_pydict()
    vals = []
    for vi, vo, vm, sc, vf in zip(d["value_int"], d["value_offset"], d["value_mult"], d["value_scale"], d["value_f64"]):
        vals.append((vi + vo) * vm / 10 ** sc if vi is not None else vf)
    n += t.num_rows
    sid = d["series_id"]; ts = d["timestamp_ms"]
    assert all((sid[i], ts[i]) < (sid[i + 1], ts[i + 1]) for i in range(len(sid) - 1)), "sorted by series, time"
print("metrics rows", n, "first values", vals[:3], "encodings", enc)
for kind in ["logs", "traces"]:
    for f in glob.glob(root + f"/{kind}/*/*/*.parquet"):
        t = pq.read_table(f)
        r = t.slice(0, 1).to_pylist()[0]
        print(kind, t.num_rows, "rows; attributes:", json.loads(r["attributes"]), "schema:", t.schema.names)
