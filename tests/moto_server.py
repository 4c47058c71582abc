"""moto server, as `moto_server` starts it, with two of its hot spots made cheap.

Both change how fast moto answers, never what it answers:

- EventBridge routes every event through `EventTemplateParser.parse`, which parses
  eight constant JSONPath expressions per event, and jsonpath-ng builds a new yacc
  parser for each: about 1 s of CPU per event on this machine. The parsed
  expressions are memoized (they are immutable; `find` does not change them).
- SQS reads the clock through `datetime` for every message of a queue on every
  receive (`Message.visible`, `delayed`). The same instants are read from
  `time.time()` (both are seconds since the epoch).
- SQS's SendMessage builds the queue's whole attribute map, counting its messages
  three times, to read one flag (`ContentBasedDeduplication`): inside SendMessage the
  counts are left out of that map (nothing there reads them); GetQueueAttributes
  still counts.

A moto version without these names runs unpatched. tests/src/moto.rs starts this file
and falls back to `moto_server` when it cannot.
"""

import functools
import sys
import threading
import time


def _patch() -> None:
    try:
        import jsonpath_ng.ext as ext

        ext.parse = functools.lru_cache(maxsize=256)(ext.parse)
    except (ImportError, AttributeError):
        pass
    try:
        from moto.sqs.models import Message

        if isinstance(Message.__dict__.get("visible"), property):
            Message.visible = property(lambda m: time.time() * 1000.0 > m.visible_at)
            Message.delayed = property(
                lambda m: time.time() * 1000.0 < m.delayed_until
            )
    except (ImportError, AttributeError):
        pass
    try:
        from moto.sqs.models import Queue, SQSBackend

        counts = [
            "approximate_number_of_messages",
            "approximate_number_of_messages_not_visible",
            "approximate_number_of_messages_delayed",
        ]
        if all(isinstance(Queue.__dict__.get(c), property) for c in counts):
            sending = threading.local()

            def uncounted(original):
                def get(queue):
                    if getattr(sending, "active", False):
                        return 0
                    return original.fget(queue)

                return property(get)

            for c in counts:
                setattr(Queue, c, uncounted(Queue.__dict__[c]))
            send = SQSBackend.send_message

            @functools.wraps(send)
            def send_message(self, *args, **kwargs):
                sending.active = True
                try:
                    return send(self, *args, **kwargs)
                finally:
                    sending.active = False

            SQSBackend.send_message = send_message
    except (ImportError, AttributeError):
        pass


if __name__ == "__main__":
    _patch()
    from moto.server import main

    main(sys.argv[1:])
