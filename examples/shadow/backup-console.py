#!/usr/bin/env python3
"""A shadow system for tenure's exec connector: a "backup console" with no API, whose users live
in a JSON file (BACKUP_CONSOLE_STATE, default ./backup-console.json next to this script).

tenure runs `backup-console.py OPERATION` with a JSON request on stdin and reads a JSON result
on stdout (docs/policy.md, `type = "exec"`). Names are data here, never commands.
"""
import fcntl
import json
import os
import sys

STATE = os.environ.get("BACKUP_CONSOLE_STATE") or os.path.join(os.path.dirname(os.path.abspath(__file__)), "backup-console.json")


def load():
    try:
        with open(STATE) as f:
            return json.load(f)
    except FileNotFoundError:
        return {"users": {}, "roles": []}


def save(state):
    tmp = STATE + ".tmp"
    with open(tmp, "w") as f:
        json.dump(state, f, sort_keys=True)
    os.replace(tmp, STATE)


def view(name, u):
    # `reference` is the marker tenure reads back: the identity the account was created for.
    v = {"name": name, "enabled": u["enabled"], "memberships": sorted(u["roles"]), "reference": u.get("reference")}
    if u.get("email"):
        v["attributes"] = {"email": u["email"]}
    return v


def main():
    # One operation at a time on the state file: tenure may run several at once.
    with open(STATE + ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return operate()


def operate():
    op = sys.argv[1]
    req = json.load(sys.stdin)
    if req.get("operation") != op:
        print(json.dumps({"ok": False, "error": "operation mismatch"}))
        return 1
    state = load()
    users = state["users"]
    name = req.get("account")
    out = {"ok": True}
    if op == "read_account":
        u = users.get(name)
        out["account"] = None if u is None else view(name, u)
    elif op == "list":
        # Reconciliation's read: one account per line, exit 0 once all are listed.
        for n, u in sorted(users.items()):
            print(json.dumps(view(n, u)))
        return 0
    elif op == "list_entitlements":
        out["entitlements"] = sorted(state["roles"])
    elif op == "create_account":
        users.setdefault(name, {"enabled": True, "roles": [], "reference": req["spec"]["reference"]})
    elif op in ("enable_account", "disable_account"):
        if name not in users:
            print(json.dumps({"ok": False, "error": "no such user"}))
            return 1
        users[name]["enabled"] = op == "enable_account"
    elif op == "mark":
        # tenure adopts an account made here: from now on it carries tenure's marker.
        if name not in users:
            print(json.dumps({"ok": False, "error": "no such user"}))
            return 1
        users[name]["reference"] = req["reference"]
    elif op == "delete_account":
        users.pop(name, None)
    elif op == "grant":
        if name not in users:
            print(json.dumps({"ok": False, "error": "no such user"}))
            return 1
        if req["target"] not in users[name]["roles"]:
            users[name]["roles"].append(req["target"])
        if req["target"] not in state["roles"]:
            state["roles"].append(req["target"])
    elif op == "revoke":
        if name in users and req["target"] in users[name]["roles"]:
            users[name]["roles"].remove(req["target"])
    elif op == "probe":
        u = users.get(name)
        out["probe"] = "allowed" if u and u["enabled"] else "refused"
        out["detail"] = "console login " + ("accepted" if u and u["enabled"] else "refused")
    else:
        print(json.dumps({"ok": False, "error": "unknown operation " + op}))
        return 1
    save(state)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
