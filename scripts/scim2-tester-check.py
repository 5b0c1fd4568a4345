"""Run scim2-tester against a SCIM service provider, every check and tag; print each result and
exit 1 unless every check passed (SUCCESS, COMPLIANT or ACCEPTABLE).

    python scripts/scim2-tester-check.py BASE_URL TOKEN
"""

import sys

from httpx2 import Client
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import Status, check_server

PASSING = {Status.SUCCESS, Status.COMPLIANT, Status.ACCEPTABLE}


def main() -> int:
    base, token = sys.argv[1], sys.argv[2]
    http = Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=60)
    client = SyncSCIMClient(http)
    results = check_server(client, raise_exceptions=False)
    failed = 0
    for r in results:
        ok = r.status in PASSING
        failed += not ok
        print(f"{'ok  ' if ok else 'FAIL'} {r.status.name:<10} {r.resource_type or '-':<8} {r.title}: {r.reason}")
    print(f"scim2-tester: {len(results)} checks, {failed} failed")
    return 1 if failed or not results else 0


if __name__ == "__main__":
    sys.exit(main())
