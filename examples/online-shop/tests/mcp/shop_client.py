"""Drives the shop's /mcp endpoint with the official Python MCP client.

Usage: shop_client.py URL [HEADER=VALUE ...] (headers of the caller, e.g.
x-user-roles=Merchandiser, or authorization=Bearer ...). Reads one JSON
request per run from stdin:
  {"list": true, "call": {"name": ..., "arguments": {...}}, "read": "reventless://...",
   "readWithin": 10}
(read models follow the log: with `readWithin` a read that fails is retried
for up to that many seconds, as a client waiting for its own write does)
and prints one JSON line with what the server answered, for the Rust test
to check: tools (name -> inputSchema), call (isError, structuredContent,
text), read (text or error), resources and templates.
"""
import asyncio
import json
import sys

import httpx2
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError


async def run(url, headers, asks):
    answer = {}
    async with httpx2.AsyncClient(headers=headers, timeout=30) as http:
        async with streamable_http_client(url, http_client=http) as (read, write):
            async with ClientSession(read, write) as session:
                init = await session.initialize()
                answer["protocolVersion"] = init.protocol_version
                answer["serverName"] = init.server_info.name
                if asks.get("list"):
                    tools = await session.list_tools()
                    answer["tools"] = {tool.name: tool.input_schema for tool in tools.tools}
                    resources = await session.list_resources()
                    answer["resources"] = [str(r.uri) for r in resources.resources]
                    templates = await session.list_resource_templates()
                    answer["templates"] = [t.uri_template for t in templates.resource_templates]
                if "call" in asks:
                    call = asks["call"]
                    try:
                        result = await session.call_tool(call["name"], call.get("arguments", {}))
                        answer["call"] = {
                            "isError": bool(result.is_error),
                            "structuredContent": result.structured_content,
                            "text": result.content[0].text if result.content else None,
                        }
                    except MCPError as error:
                        answer["call"] = {"error": {"code": error.error.code, "message": error.error.message}}
                if "read" in asks:
                    deadline = asyncio.get_running_loop().time() + asks.get("readWithin", 0)
                    while True:
                        try:
                            result = await session.read_resource(asks["read"])
                            answer["read"] = {"text": result.contents[0].text, "uri": str(result.contents[0].uri)}
                            break
                        except MCPError as error:
                            answer["read"] = {"error": {"code": error.error.code, "message": error.error.message}}
                            if asyncio.get_running_loop().time() >= deadline:
                                break
                            await asyncio.sleep(0.05)
    return answer


def main():
    url = sys.argv[1]
    headers = dict(arg.split("=", 1) for arg in sys.argv[2:])
    asks = json.loads(sys.stdin.read() or "{}")
    print(json.dumps(asyncio.run(run(url, headers, asks))))


if __name__ == "__main__":
    main()
