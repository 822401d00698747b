-- wrk script: GET with one header, BENCH_HEADER="Name: value".
local name, value = os.getenv("BENCH_HEADER"):match("^([^:]+):%s*(.*)$")
wrk.headers[name] = value
