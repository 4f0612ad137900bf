"""A multipart/form-data body, read part by part as it arrives (RFC 7578).

``POST /config/uploads`` takes a plugin's zip in such a form; :class:`Form`
hands its file on chunk by chunk, so memory does not grow with its size.
"""

from __future__ import annotations

import email.message
import email.parser
import email.policy
from collections.abc import Iterator
from typing import Callable

from .session_requests import BadRequest

MAX_PART_HEAD = 16 << 10  # bytes of one form part's headers
CHUNK = 1 << 16  # bytes read from the socket at a time


class Form:
    """A multipart/form-data body, read part by part as it arrives (RFC 7578).

    Memory holds one chunk and a part's headers at most: a part's data is
    handed on chunk by chunk, and what no one reads is dropped.

    Args:
        read: up to that many more bytes of the body; ``b""`` once all came.
        boundary: the boundary the Content-Type names.
    """

    def __init__(self, read: Callable[[int], bytes], boundary: str) -> None:
        self.read = read
        self.delimiter = b"\r\n--" + boundary.encode("latin-1")
        self.buffer = b"\r\n"  # the first boundary is then found as the others are

    def parts(self) -> Iterator[tuple[email.message.EmailMessage, Iterator[bytes]]]:
        """Each part's headers and its data, until the closing boundary.

        Raises:
            BadRequest: the body is not such a form, or ended before its closing boundary.
        """
        while (at := self.buffer.find(self.delimiter)) < 0:  # the preamble goes
            self.buffer = self.buffer[-len(self.delimiter):]
            self._more("before the first boundary")
        self.buffer = self.buffer[at + len(self.delimiter):]
        while self._next_part():
            headers = self._headers()
            data = self._data()
            yield headers, data
            for _ in data:
                pass

    def _more(self, where: str) -> None:
        chunk = self.read(CHUNK)
        if not chunk:
            raise BadRequest(f"Error parse the multi part form: the body ended {where}.")
        self.buffer += chunk

    def _next_part(self) -> bool:
        """Past a boundary: False at the closing one, else True once past its line end."""
        while len(self.buffer.lstrip(b" \t")) < 2:
            if len(self.buffer) > MAX_PART_HEAD:
                break
            self._more("after a boundary")
        if self.buffer.startswith(b"--"):
            return False
        rest = self.buffer.lstrip(b" \t")
        if not rest.startswith(b"\r\n"):
            raise BadRequest("Error parse the multi part form: a boundary must end its line.")
        self.buffer = rest[2:]
        return True

    def _headers(self) -> email.message.EmailMessage:
        while not self.buffer.startswith(b"\r\n") and (
                end := self.buffer.find(b"\r\n\r\n")) < 0:
            if len(self.buffer) > MAX_PART_HEAD:
                raise BadRequest("Error parse the multi part form: a part's headers take "
                                 f"more than {MAX_PART_HEAD} bytes.")
            self._more("in a part's headers")
        if self.buffer.startswith(b"\r\n"):
            head, self.buffer = b"", self.buffer[2:]
        else:
            head, self.buffer = self.buffer[:end], self.buffer[end + 4:]
        parser = email.parser.BytesHeaderParser(policy=email.policy.HTTP)
        return parser.parsebytes(head + b"\r\n\r\n")

    def _data(self) -> Iterator[bytes]:
        keep = len(self.delimiter) - 1  # what may be the start of the next boundary
        while (at := self.buffer.find(self.delimiter)) < 0:
            if len(self.buffer) > keep:
                yield self.buffer[:-keep]
                self.buffer = self.buffer[-keep:]
            self._more("inside a part, before the closing boundary")
        if at:
            yield self.buffer[:at]
        self.buffer = self.buffer[at + len(self.delimiter):]
