"""WeChat Official Account protocol pieces: signatures, 消息加解密 (AES) and safe XML.

The scheme follows the Official Account documentation:
- URL signature: sha1 of the sorted strings token, timestamp, nonce, hex-encoded;
- security mode: `msg_signature` = sha1 of sorted token, timestamp, nonce, Encrypt; the
  payload is AES-256-CBC with key = base64(EncodingAESKey + "="), IV = the key's first 16
  bytes, PKCS#7 padding to 32-byte blocks, plaintext = 16 random bytes + 4-byte big-endian
  length + message + appid.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import struct
import time
import xml.etree.ElementTree as ET

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

BLOCK = 32
MAX_XML_BYTES = 64 * 1024
_FORBIDDEN = re.compile(rb"<!\s*(DOCTYPE|ENTITY|ELEMENT|ATTLIST|NOTATION)", re.IGNORECASE)


class WeChatProtocolError(Exception):
    """A request that does not follow the protocol (bad XML, bad ciphertext, wrong appid)."""


def signature(*parts: str) -> str:
    """sha1 hex of the parts sorted and concatenated (URL and message signatures)."""
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()


def check_signature(given: str | None, *parts: str) -> bool:
    """Constant-time comparison of a given signature with the expected one."""
    if not given:
        return False
    return hmac.compare_digest(given.lower().encode(), signature(*parts).encode())


def parse_xml(body: bytes | str, max_bytes: int = MAX_XML_BYTES) -> dict[str, str]:
    """Flat `{tag: text}` of a WeChat XML message; refuses DTDs, entities, oversize and junk."""
    raw = body.encode() if isinstance(body, str) else body
    if len(raw) > max_bytes:
        raise WeChatProtocolError("xml too large")
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")) or b"\x00" in raw:
        raise WeChatProtocolError("xml must be utf-8")
    # No DTD means no entity expansion (billion laughs) and no external entities (XXE).
    if _FORBIDDEN.search(raw):
        raise WeChatProtocolError("xml with a DTD or entity declaration")
    try:
        root = ET.fromstring(raw)
    except ET.ParseError as exc:
        raise WeChatProtocolError("malformed xml") from exc
    if root.tag != "xml":
        raise WeChatProtocolError("root element must be <xml>")
    fields: dict[str, str] = {}
    for child in root:
        if len(child):  # nested elements (e.g. ScanCodeInfo) are not needed here
            continue
        fields[child.tag] = (child.text or "").strip()
    return fields


def cdata(text: str) -> str:
    """A CDATA section; a `]]>` inside the text is split so it cannot end the section early."""
    return "<![CDATA[" + str(text).replace("]]>", "]]]]><![CDATA[>") + "]]>"


def text_reply_xml(to_user: str, from_user: str, content: str, create_time: int | None) -> str:
    """The passive text reply (`MsgType` text) in plain XML."""
    return (
        "<xml>"
        f"<ToUserName>{cdata(to_user)}</ToUserName>"
        f"<FromUserName>{cdata(from_user)}</FromUserName>"
        f"<CreateTime>{int(create_time or time.time())}</CreateTime>"
        "<MsgType><![CDATA[text]]></MsgType>"
        f"<Content>{cdata(content)}</Content>"
        "</xml>"
    )


class WeChatCrypto:
    """Encrypts and decrypts messages of one Official Account (security / compatible mode)."""

    def __init__(self, token: str, encoding_aes_key: str, appid: str) -> None:
        """Check the 43-character EncodingAESKey and derive the AES key."""
        if len(encoding_aes_key) != 43:
            raise ValueError("WECHAT_ENCODING_AES_KEY must have 43 characters")
        try:
            self.key = base64.b64decode(encoding_aes_key + "=", validate=True)
        except ValueError as exc:
            raise ValueError("WECHAT_ENCODING_AES_KEY is not valid base64") from exc
        if len(self.key) != 32:
            raise ValueError("WECHAT_ENCODING_AES_KEY must decode to 32 bytes")
        self.token = token
        self.appid = appid

    def _cipher(self) -> Cipher:
        return Cipher(algorithms.AES(self.key), modes.CBC(self.key[:16]))

    def encrypt(self, message: str, random16: bytes | None = None) -> str:
        """Base64 ciphertext of a message (random prefix, length, message, appid, padding)."""
        body = message.encode()
        plain = (random16 or os.urandom(16)) + struct.pack(">I", len(body)) + body
        plain += self.appid.encode()
        pad = BLOCK - len(plain) % BLOCK
        plain += bytes([pad]) * pad
        enc = self._cipher().encryptor()
        return base64.b64encode(enc.update(plain) + enc.finalize()).decode()

    def decrypt(self, encrypted: str) -> str:
        """The message inside a base64 ciphertext; the padding and the appid are checked."""
        try:
            data = base64.b64decode(encrypted, validate=True)
        except ValueError as exc:
            raise WeChatProtocolError("ciphertext is not base64") from exc
        if not data or len(data) % 16:
            raise WeChatProtocolError("ciphertext length")
        dec = self._cipher().decryptor()
        plain = dec.update(data) + dec.finalize()
        pad = plain[-1]
        if not 1 <= pad <= BLOCK or plain[-pad:] != bytes([pad]) * pad:
            raise WeChatProtocolError("bad padding")
        plain = plain[:-pad]
        if len(plain) < 20:
            raise WeChatProtocolError("plaintext too short")
        (length,) = struct.unpack(">I", plain[16:20])
        message, appid = plain[20 : 20 + length], plain[20 + length :]
        if len(message) != length or not hmac.compare_digest(appid, self.appid.encode()):
            raise WeChatProtocolError("appid mismatch")
        try:
            return message.decode()
        except UnicodeDecodeError as exc:
            raise WeChatProtocolError("message is not utf-8") from exc

    def encrypted_reply(self, reply_xml: str, timestamp: str, nonce: str) -> str:
        """The passive reply wrapped for security mode (Encrypt, MsgSignature, TimeStamp, Nonce)."""
        encrypted = self.encrypt(reply_xml)
        sig = signature(self.token, timestamp, nonce, encrypted)
        return (
            "<xml>"
            f"<Encrypt>{cdata(encrypted)}</Encrypt>"
            f"<MsgSignature>{cdata(sig)}</MsgSignature>"
            f"<TimeStamp>{timestamp}</TimeStamp>"
            f"<Nonce>{cdata(nonce)}</Nonce>"
            "</xml>"
        )
