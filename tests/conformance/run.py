"""Runs scim2-tester against a SCIM server and prints one JSON object per check result.

Usage: python run.py BASE_URL TOKEN
Discovery (ServiceProviderConfig, ResourceTypes, Schemas), the random-URL check, and the
CRUD and PATCH checks for Users and Groups. tests/it/conformance.rs reads the lines.
"""

import json
import sys

import httpx2
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import check_server


def main() -> None:
    base_url, token = sys.argv[1], sys.argv[2]
    http = httpx2.Client(base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    client = SyncSCIMClient(http)
    for result in check_server(client, resource_types=["User", "Group"]):
        print(
            json.dumps(
                {
                    "status": result.status.name,
                    "title": result.title,
                    "resource_type": result.resource_type,
                    "reason": result.reason,
                    "tags": sorted(result.tags),
                    "data": result.data if result.status.name in ("ERROR", "CRITICAL") else None,
                },
                default=str,
            )
        )


if __name__ == "__main__":
    main()
