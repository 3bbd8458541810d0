#!/opt/moto/bin/python3
"""The three `mc` commands docker-compose.yml runs, against the moto stand-in:
`mc ready local`, `mc alias set NAME URL USER PASSWORD`, `mc mb [--ignore-existing] NAME/BUCKET`."""
import json
import sys
import urllib.error
import urllib.request

ALIASES = "/tmp/.mc-aliases.json"


def aliases():
    try:
        with open(ALIASES) as f:
            return json.load(f)
    except FileNotFoundError:
        return {"local": "http://127.0.0.1:9000"}


def main(args):
    if args[:2] == ["ready", "local"]:
        urllib.request.urlopen(aliases()["local"] + "/", timeout=4)
        return 0
    if args[:2] == ["alias", "set"] and len(args) == 6:
        table = aliases()
        table[args[2]] = args[3].rstrip("/")
        with open(ALIASES, "w") as f:
            json.dump(table, f)
        return 0
    if args and args[0] == "mb":
        ignore = "--ignore-existing" in args
        name, _, bucket = [a for a in args[1:] if not a.startswith("--")][0].partition("/")
        request = urllib.request.Request(aliases()[name] + "/" + bucket, method="PUT")
        try:
            urllib.request.urlopen(request, timeout=10)
        except urllib.error.HTTPError as e:
            if not (ignore and e.code == 409):
                raise
        print(f"Bucket created successfully `{name}/{bucket}`.")
        return 0
    print(f"mc stand-in: unsupported command {' '.join(args)}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
