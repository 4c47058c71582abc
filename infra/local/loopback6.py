#!/usr/bin/env python3
"""Forwards [::1]:PORT to 127.0.0.1:PORT for `make run`.

`cargo lambda invoke` sends to [::1]:9000 by default while the emulation serves
127.0.0.1 (loopback only, as the design asks); this keeps the plain
`cargo lambda invoke webhook --data-file events/...` working without exposing anything
beyond loopback. Exits by itself when its parent (the `make run` shell) is gone.
"""
import asyncio, os, sys

PORT = int(sys.argv[1])
PARENT = os.getppid()


async def pipe(reader, writer):
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        writer.close()


async def handle(client_reader, client_writer):
    try:
        server_reader, server_writer = await asyncio.open_connection("127.0.0.1", PORT)
    except OSError:
        client_writer.close()
        return
    await asyncio.gather(pipe(client_reader, server_writer), pipe(server_reader, client_writer))


async def main():
    try:
        server = await asyncio.start_server(handle, "::1", PORT)
    except OSError:
        return  # no IPv6 loopback, or the port is taken: nothing to forward
    async with server:
        while os.getppid() == PARENT:
            await asyncio.sleep(2)


asyncio.run(main())
