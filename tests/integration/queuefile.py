"""An independent reader of Petrel queue files, written from docs/queue.md
(not from the C code), so the tests check the format as documented."""
import struct


class QueueFile:
    def __init__(self, path):
        with open(path, "rb") as f:
            data = f.read()
        self.path = path
        self.attrs = {}
        self.recipients = []  # dicts: status, notify, address, orcpt
        self.content = None
        pos = 0
        while pos < len(data):
            rtype = chr(data[pos])
            (length,) = struct.unpack(">I", data[pos + 1:pos + 5])
            payload = data[pos + 5:pos + 5 + length]
            if len(payload) != length:
                raise ValueError("truncated record %s at %d" % (rtype, pos))
            pos += 5 + length
            if rtype == "V":
                self.version = struct.unpack(">I", payload)[0]
            elif rtype == "T":
                self.arrival = struct.unpack(">QI", payload)
            elif rtype == "Q":
                self.attempts, self.next_retry = struct.unpack(">IQ", payload)
            elif rtype == "Z":
                self.size = struct.unpack(">Q", payload)[0]
            elif rtype == "S":
                self.sender = payload.decode("utf-8", "replace")
            elif rtype in "CAHPUI":
                name = {"C": "client_name", "A": "client_addr", "H": "helo", "P": "protocol",
                        "U": "auth_user", "I": "envid"}[rtype]
                self.attrs[name] = payload.decode("utf-8", "replace")
            elif rtype == "F":
                self.attrs["ret"] = chr(payload[0])
            elif rtype == "R":
                status, notify, has_orcpt = payload[0], payload[1], payload[2]
                (alen,) = struct.unpack(">H", payload[3:5])
                addr = payload[5:5 + alen].decode("utf-8", "replace")
                (olen,) = struct.unpack(">H", payload[5 + alen:7 + alen])
                orcpt = payload[7 + alen:7 + alen + olen].decode("utf-8", "replace")
                self.recipients.append(dict(status=chr(status), notify=notify, address=addr,
                                            orcpt=orcpt if has_orcpt else None))
            elif rtype == "M":
                self.content = payload
            elif rtype == "X":
                if pos != len(data):
                    raise ValueError("data after the end record")
                self.complete = True
            else:
                raise ValueError("unknown record type %r" % rtype)

    def headers(self):
        """The header section as text, up to the empty line."""
        head = self.content.split(b"\r\n\r\n", 1)[0]
        return head.decode("utf-8", "replace")
