"""Distinguished names by identity, not spelling: two DNs name the same entry when their
canonical forms are equal (attribute types as OIDs, RFC 4514 escapes and `#hex` BER values
decoded, case and insignificant spaces folded, multi-valued RDNs sorted).

The bind-account guards use it: onboarding (target_domains.managed.service.is_bind_account) and the
LDAP driver, which never resets the password of the account it is bound as.
"""
from __future__ import annotations

import ldap
import ldap.dn

# Attribute types by OID (RFC 4519, RFC 4524, RFC 2247, the AD schema's names), so that every
# spelling of a naming attribute (`cn`, `commonName`, `2.5.4.3`) compares as one.
ATTRIBUTE_OIDS = {
    "cn": "2.5.4.3", "commonname": "2.5.4.3",
    "sn": "2.5.4.4", "surname": "2.5.4.4",
    "serialnumber": "2.5.4.5",
    "c": "2.5.4.6", "countryname": "2.5.4.6",
    "l": "2.5.4.7", "localityname": "2.5.4.7",
    "st": "2.5.4.8", "stateorprovincename": "2.5.4.8",
    "street": "2.5.4.9", "streetaddress": "2.5.4.9",
    "o": "2.5.4.10", "organizationname": "2.5.4.10",
    "ou": "2.5.4.11", "organizationalunitname": "2.5.4.11",
    "title": "2.5.4.12",
    "name": "2.5.4.41",
    "givenname": "2.5.4.42", "gn": "2.5.4.42",
    "initials": "2.5.4.43",
    "generationqualifier": "2.5.4.44",
    "dnqualifier": "2.5.4.46",
    "uid": "0.9.2342.19200300.100.1.1", "userid": "0.9.2342.19200300.100.1.1",
    "mail": "0.9.2342.19200300.100.1.3", "rfc822mailbox": "0.9.2342.19200300.100.1.3",
    "dc": "0.9.2342.19200300.100.1.25", "domaincomponent": "0.9.2342.19200300.100.1.25",
    "samaccountname": "1.2.840.113556.1.4.221",
    "userprincipalname": "1.2.840.113556.1.4.656",
}
# BER string types a `#hex` value may hold (RFC 4514 2.4): OCTET STRING, UTF8String,
# PrintableString, TeletexString, IA5String, UniversalString is left out (UCS-4), BMPString.
_BER_STRINGS = {0x04: "utf-8", 0x0C: "utf-8", 0x13: "ascii", 0x14: "latin-1", 0x16: "ascii", 0x1E: "utf-16-be"}


def _attribute_type(name: str) -> str:
    lowered = name.lower()
    return ATTRIBUTE_OIDS.get(lowered, lowered)


def _ber_text(raw: bytes) -> str | None:
    """The text of a BER-encoded string value (a DN's `#hex` form); None if it is none."""
    if len(raw) < 2 or raw[0] not in _BER_STRINGS:
        return None
    length, start = raw[1], 2
    if length & 0x80:  # long form: the next (length & 0x7f) bytes hold the length
        count = length & 0x7F
        length, start = int.from_bytes(raw[2:2 + count], "big"), 2 + count
    if start + length != len(raw):
        return None
    try:
        return raw[start:].decode(_BER_STRINGS[raw[0]])
    except UnicodeDecodeError:
        return None


def _attribute_value(value: str, flags: int) -> str:
    if flags & ldap.AVA_BINARY:
        text = _ber_text(value.encode("latin-1", "replace"))
        if text is None:
            return "#" + value.encode("latin-1", "replace").hex()
        value = text
    # caseIgnoreMatch after RFC 4518's insignificant-space handling: no leading or trailing
    # spaces, runs of spaces as one. (Values of case-exact naming attributes compare alike too:
    # two DNs taken for one only ever refuse an onboarding, never allow one.)
    return " ".join(value.split()).casefold()


def canonical_dn(text: str) -> str:
    """A DN in one spelling, to tell whether two DNs name the same entry: attribute types as
    OIDs, values unescaped (RFC 4514, `#hex` BER values decoded), case and spacing folded,
    multi-valued RDNs sorted. Text that is no DN comes back case-folded."""
    try:
        rdns = ldap.dn.str2dn(text)
    except (ldap.DECODING_ERROR, ValueError, TypeError):
        return text.casefold()
    canonical = [sorted((_attribute_type(name), _attribute_value(value, flags), ldap.AVA_STRING)
                        for name, value, flags in rdn) for rdn in rdns]
    return ldap.dn.dn2str(canonical)
