#!/usr/bin/env python3
"""A TCP proxy that adds latency, to measure driftwatch against an object store as far away as
a real one (S3 answers in tens of milliseconds; s3s-fs on loopback in well under one).

    python3 benches/scripts/latency_proxy.py LISTEN_PORT TARGET_PORT DELAY_MS

Every chunk read from either side is written to the other DELAY_MS later, in order, so a request
and its response each take DELAY_MS more: a round trip gains twice the delay. Loopback only.
"""

import asyncio
import sys


async def pipe(reader, writer, delay):
    try:
        while chunk := await reader.read(65536):
            await asyncio.sleep(delay)
            writer.write(chunk)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        writer.close()


async def main(listen_port, target_port, delay):
    async def connect(client_reader, client_writer):
        try:
            server_reader, server_writer = await asyncio.open_connection("127.0.0.1", target_port)
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(
            pipe(client_reader, server_writer, delay), pipe(server_reader, client_writer, delay)
        )

    server = await asyncio.start_server(connect, "127.0.0.1", listen_port)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]) / 1000))
