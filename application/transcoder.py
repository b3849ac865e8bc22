"""eventsourcing's JSON transcoder, decoding with msgspec.

The library decodes stored events with `json.JSONDecoder(object_hook=...)`: the pure-Python
part of that (the hook for every JSON object, and the decoder's own bookkeeping) is most of
the cost of reading events back. msgspec parses the same JSON in C; the objects are then
revived bottom-up exactly as the hook would (a `{"_type_": name, "_data_": data}` object
becomes the registered type, `_data_` already revived). Encoding is the library's own, so
what is stored does not change. JSON that msgspec refuses (NaN, a number beyond a double)
is decoded by the library's decoder, so every input gives what it gave before.
"""

from __future__ import annotations

from typing import Any

import msgspec
from eventsourcing.persistence import JSONTranscoder

_decoder = msgspec.json.Decoder()


class MsgspecJSONTranscoder(JSONTranscoder):
    """Decodes what `JSONTranscoder` encodes, to the same objects, faster."""

    def decode(self, data: bytes) -> Any:
        """The object `JSONTranscoder.decode` returns for `data`."""
        try:
            parsed = _decoder.decode(data)
        except msgspec.DecodeError:
            # What msgspec refuses and `json` accepts (NaN, numbers beyond a double) or
            # rejects: the library's decoder gives its own answer.
            return super().decode(data)
        return self._revive(parsed)

    def _revive(self, value: Any) -> Any:
        """Parsed `value` with the hook applied to every object in it, the innermost first.
        Inlines the hook's test, and recurses only into containers: most values are neither
        containers nor transcoded objects."""
        if type(value) is list:
            return [
                self._revive(item) if type(item) is dict or type(item) is list else item
                for item in value
            ]
        if type(value) is not dict:
            return value
        for key, item in value.items():
            if type(item) is dict or type(item) is list:
                value[key] = self._revive(item)
        if len(value) == 2 and "_type_" in value and "_data_" in value:
            transcoding = self.names.get(value["_type_"])
            if transcoding is None:
                return self._decode_obj(value)  # the library's error
            return transcoding.decode(value["_data_"])
        return value
