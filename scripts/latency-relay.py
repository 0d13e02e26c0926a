#!/usr/bin/env python3
"""A TCP relay that adds latency: every chunk read from one side is written
to the other DELAY_MS later, in order, in both directions. scripts/netfaults
puts it between the client and the server, because this kernel has no
netem (`tc qdisc ... netem` is unknown).

Usage: latency-relay.py LISTEN_HOST:PORT TARGET_HOST:PORT DELAY_MS

A half-close is passed on (after the same delay) and a connection that fails
on one side is closed on both. Prints "relay listening on HOST:PORT" once it
accepts connections.
"""

import asyncio
import sys


async def pipe(reader, writer, delay):
    """Copies reader to writer, each chunk `delay` seconds after it was read."""
    loop = asyncio.get_running_loop()
    queue = asyncio.Queue()

    async def read():
        while True:
            data = await reader.read(65536)
            queue.put_nowait((loop.time() + delay, data))
            if not data:
                return

    async def write():
        while True:
            due, data = await queue.get()
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if not data:
                if writer.can_write_eof():
                    writer.write_eof()
                return
            writer.write(data)
            await writer.drain()

    await asyncio.gather(read(), write())


async def relay(client_reader, client_writer, target, delay):
    host, port = target
    try:
        server_reader, server_writer = await asyncio.open_connection(host, port)
    except OSError:
        client_writer.close()
        return
    directions = [
        asyncio.create_task(pipe(client_reader, server_writer, delay)),
        asyncio.create_task(pipe(server_reader, client_writer, delay)),
    ]
    try:
        # Both directions ending cleanly (two half-closes) or either failing ends the connection.
        done, pending = await asyncio.wait(directions, return_when=asyncio.FIRST_EXCEPTION)
        for task in pending:
            task.cancel()
        for task in done:
            task.exception()  # Retrieved, so asyncio does not log it: a reset is expected here.
    finally:
        for writer in (client_writer, server_writer):
            writer.close()


def address(text):
    host, _, port = text.rpartition(":")
    return host, int(port)


async def main():
    if len(sys.argv) != 4:
        sys.exit("usage: latency-relay.py LISTEN_HOST:PORT TARGET_HOST:PORT DELAY_MS")
    listen, target, delay = address(sys.argv[1]), address(sys.argv[2]), int(sys.argv[3]) / 1000
    server = await asyncio.start_server(
        lambda reader, writer: relay(reader, writer, target, delay), *listen
    )
    print(f"relay listening on {listen[0]}:{listen[1]}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
