"""XMP metadata packets for licence PDFs: Dublin Core, PDF and XMP basics plus the §3 licence fields."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from xml.sax.saxutils import escape, quoteattr

LICENCE_NS = "https://licence-hub.example/ns/licence/1.0/"
LICENCE_PREFIX = "lic"
# XMP Part 1 §7.3.2: the fixed packet id; the trailing padding lets a tool edit the packet in place.
_PACKET_ID = "W5M0MpCehiHzreSzNTczkc9d"
_PADDING = (" " * 99 + "\n") * 10
_NCNAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*\Z")
# XML 1.0 §2.2: characters a document may contain at all.
_XML_INVALID = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xmp_date(moment: datetime) -> str:
    """XMP Part 1 §8.2.1.1 date (ISO 8601 with an explicit offset)."""
    if moment.utcoffset() is None:
        raise ValueError("PDF and XMP dates need a timezone-aware datetime")
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def pdf_date(moment: datetime) -> str:
    """The same instant as a PDF date string (ISO 32000-1 §7.9.4): D:YYYYMMDDHHmmSS and an offset."""
    offset = moment.utcoffset()
    if offset is None:
        raise ValueError("PDF and XMP dates need a timezone-aware datetime")
    minutes = int(offset.total_seconds()) // 60
    zone = "Z" if minutes == 0 else f"{'+' if minutes > 0 else '-'}{abs(minutes) // 60:02d}'{abs(minutes) % 60:02d}'"
    return moment.strftime("D:%Y%m%d%H%M%S") + zone


def build_xmp(
    *,
    title: str,
    creator: str,
    identifier: str,
    producer: str,
    created: datetime,
    licence: Mapping[str, str],
) -> bytes:
    """An XMP packet (UTF-8, no BOM) for the document catalog's /Metadata stream (ISO 32000-1 §14.3.2).

    ``licence`` becomes one ``lic:<name>`` element per field, in the caller's order; names must be
    XML NCNames, values are escaped, and characters XML cannot carry are refused, not dropped.
    """
    for name, value in licence.items():
        if not _NCNAME.match(name):
            raise ValueError(f"licence metadata name {name!r} is not an XML name")
        if _XML_INVALID.search(value):
            raise ValueError(f"licence metadata {name} holds a character XML cannot carry")
    for value in (title, creator, identifier, producer):
        if _XML_INVALID.search(value):
            raise ValueError("document metadata holds a character XML cannot carry")
    date = escape(xmp_date(created))
    fields = "\n".join(
        f"   <{LICENCE_PREFIX}:{name}>{escape(value)}</{LICENCE_PREFIX}:{name}>" for name, value in licence.items()
    )
    packet = f"""<?xpacket begin="\ufeff" id="{_PACKET_ID}"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description rdf:about=""
    xmlns:dc="http://purl.org/dc/elements/1.1/"
    xmlns:pdf="http://ns.adobe.com/pdf/1.3/"
    xmlns:xmp="http://ns.adobe.com/xap/1.0/"
    xmlns:{LICENCE_PREFIX}={quoteattr(LICENCE_NS)}>
   <dc:format>application/pdf</dc:format>
   <dc:title><rdf:Alt><rdf:li xml:lang="x-default">{escape(title)}</rdf:li></rdf:Alt></dc:title>
   <dc:creator><rdf:Seq><rdf:li>{escape(creator)}</rdf:li></rdf:Seq></dc:creator>
   <dc:identifier>{escape(identifier)}</dc:identifier>
   <pdf:Producer>{escape(producer)}</pdf:Producer>
   <xmp:CreatorTool>{escape(producer)}</xmp:CreatorTool>
   <xmp:CreateDate>{date}</xmp:CreateDate>
   <xmp:ModifyDate>{date}</xmp:ModifyDate>
   <xmp:MetadataDate>{date}</xmp:MetadataDate>
{fields}
  </rdf:Description>
 </rdf:RDF>
</x:xmpmeta>
{_PADDING}<?xpacket end="w"?>"""
    return packet.encode("utf-8")
