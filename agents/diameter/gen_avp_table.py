"""Generate ``avp_table.py`` (dev-time tool; the output is committed, this is never run in CI).

Why a generator: the AVP definitions of RFC 6733, RFC 4006, RFC 7155 and 3GPP TS 32.299
are facts we need as a compact, typed table. Wireshark's dictionary
(``/usr/share/wireshark/diameter``, package libwireshark-data) is a convenient,
machine-readable reference for them, but it is GPL and large, so it is read here at
development time only and never shipped: only the names, codes, vendors, types, flags,
enumerations and grouped member lists of the AVPs chargeway uses end up in the table.

Usage: ``python -m agents.diameter.gen_avp_table > agents/diameter/avp_table.py``
"""

from __future__ import annotations

import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

WIRESHARK_DIR = Path("/usr/share/wireshark/diameter")

# Base protocol (RFC 6733), Credit-Control (RFC 4006/8506) and NASREQ (RFC 7155) AVPs we use.
BASE_AND_CC = """
User-Name Class Session-Timeout Proxy-State Accounting-Session-Id Acct-Multi-Session-Id
Event-Timestamp Acct-Interim-Interval Host-IP-Address Auth-Application-Id Acct-Application-Id
Vendor-Specific-Application-Id Redirect-Host-Usage Redirect-Max-Cache-Time Session-Id
Origin-Host Supported-Vendor-Id Vendor-Id Firmware-Revision Result-Code Product-Name
Session-Binding Session-Server-Failover Multi-Round-Time-Out Disconnect-Cause Auth-Request-Type
Auth-Grace-Period Auth-Session-State Origin-State-Id Failed-AVP Proxy-Host Error-Message
Route-Record Destination-Realm Proxy-Info Re-Auth-Request-Type Accounting-Sub-Session-Id
Authorization-Lifetime Redirect-Host Destination-Host Error-Reporting-Host Termination-Cause
Origin-Realm Experimental-Result Experimental-Result-Code Inband-Security-Id
Accounting-Record-Type Accounting-Realtime-Required Accounting-Record-Number
CC-Correlation-Id CC-Input-Octets CC-Money CC-Output-Octets CC-Request-Number CC-Request-Type
CC-Service-Specific-Units CC-Session-Failover CC-Sub-Session-Id CC-Time CC-Total-Octets
Check-Balance-Result Cost-Information Cost-Unit Currency-Code Credit-Control
Credit-Control-Failure-Handling Direct-Debiting-Failure-Handling Exponent
Final-Unit-Indication Granted-Service-Unit Rating-Group Redirect-Address-Type Redirect-Server
Redirect-Server-Address Requested-Action Requested-Service-Unit Restriction-Filter-Rule
Service-Identifier Service-Parameter-Info Service-Parameter-Type Service-Parameter-Value
Subscription-Id Subscription-Id-Data Unit-Value Used-Service-Unit Value-Digits Validity-Time
Final-Unit-Action Subscription-Id-Type Tariff-Time-Change Tariff-Change-Usage
G-S-U-Pool-Identifier CC-Unit-Type Multiple-Services-Indicator
Multiple-Services-Credit-Control G-S-U-Pool-Reference User-Equipment-Info
User-Equipment-Info-Type User-Equipment-Info-Value Service-Context-Id Filter-Id
Called-Station-Id Calling-Station-Id Framed-IP-Address NAS-Port-Type NAS-Identifier
NAS-IP-Address
""".split()

# 3GPP TS 32.299 Service-Information for data (PS), voice (IMS) and SMS, one level deep,
# plus the nested AVPs the default template and Kamailio ims_charging use.
TGPP_TOPS = ("PS-Information", "IMS-Information", "SMS-Information")
TGPP_EXTRA = """
Service-Information Trigger Trigger-Type 3GPP-Reporting-Reason Quota-Holding-Time
Quota-Consumption-Time Time-Quota-Threshold Volume-Quota-Threshold Unit-Quota-Threshold
Envelope-Reporting SIP-Method Event Content-Type Expires SIP-Request-Timestamp
SIP-Response-Timestamp SIP-Request-Timestamp-Fraction SIP-Response-Timestamp-Fraction
Originating-IOI Terminating-IOI Requested-Party-Address Called-Asserted-Identity
Carrier-Select-Routing-Information Number-Portability-Routing-Information
Recipient-Address Address-Type Address-Data Address-Domain Domain-Name
3GPP-IMSI-MCC-MNC Originator-Received-Address Recipient-Received-Address Subscriber-Role
Originator-Address SMSC-Address Service-Specific-Type Service-Specific-Data
Time-First-Usage Time-Last-Usage Time-Usage Service-Generic-Information
""".split()

# Vendor extensions not in the Wireshark dictionary (Huawei OCS IN-Information, vendor
# 2011), used by CGRateS's default voice processors for Real-Called-Number.
EXTRA_DEFS = [
    ("IN-Information", 20300, 2011, "Grouped", True, {}, ("Calling-Party-Address",
     "Called-Party-Address", "Real-Called-Number", "Charge-Flow-Type", "Calling-Vlr-Number")),
    ("Real-Called-Number", 20327, 2011, "UTF8String", True, {}, ()),
    ("Charge-Flow-Type", 20339, 2011, "Unsigned32", True, {}, ()),
    ("Calling-Vlr-Number", 20302, 2011, "UTF8String", True, {}, ()),
]

TYPE_MAP = {
    "AppId": "Unsigned32", "VendorId": "Unsigned32", "IPAddress": "Address",
    "OctetStringOrUTF8": "OctetString", "IPFilterRule": "OctetString",
    "QoSFilterRule": "OctetString", "MIPRegistrationRequest": "OctetString",
}


def load_root() -> ET.Element:
    """Wireshark's dictionary.xml includes its other files as XML external entities,
    which ElementTree does not resolve: inline them by hand."""
    main = (WIRESHARK_DIR / "dictionary.xml").read_text(encoding="utf-8")
    entities = dict(re.findall(r'<!ENTITY\s+(\w+)\s+SYSTEM\s+"([^"]+)">', main))
    main = re.sub(r"<!DOCTYPE.*?\]>", "", main, flags=re.S)
    main = re.sub(r"<\?[a-z-]+-proto[^>]*\?>", "", main)
    for name, filename in entities.items():
        sub = (WIRESHARK_DIR / filename).read_text(encoding="utf-8")
        main = main.replace(f"&{name};", re.sub(r"^\s*<\?xml[^>]*\?>", "", sub))
    return ET.fromstring(main)


def main() -> None:
    root = load_root()
    vendors = {v.get("vendor-id"): int(v.get("code")) for v in root.iter("vendor")}
    by_name: dict[str, ET.Element] = {}
    for avp in root.iter("avp"):
        # A name can be defined by several vendors' files: IETF and 3GPP definitions win.
        preferred = avp.get("vendor-id") in (None, "TGPP")
        if avp.get("name") not in by_name or preferred and by_name[avp.get("name")].get("vendor-id") not in (None, "TGPP"):
            by_name[avp.get("name")] = avp

    wanted: list[str] = list(BASE_AND_CC)
    for top in TGPP_TOPS:
        grouped = by_name[top].find("grouped")
        wanted.append(top)
        wanted.extend(m.get("name") for m in grouped.iter("gavp"))
    wanted.extend(TGPP_EXTRA)
    # Members of the groups we keep, one more level (Time-Stamps, Subscription-Id...).
    for name in list(wanted):
        elem = by_name.get(name)
        if elem is not None and elem.find("grouped") is not None:
            wanted.extend(m.get("name") for m in elem.find("grouped").iter("gavp"))

    rows = []
    seen: set[str] = set()
    for name in wanted:
        if name in seen or name not in by_name:
            continue
        seen.add(name)
        elem = by_name[name]
        vendor = vendors.get(elem.get("vendor-id"), 0) if elem.get("vendor-id") else 0
        type_elem = elem.find("type")
        grouped = elem.find("grouped")
        if grouped is not None:
            avp_type = "Grouped"
            members = tuple(m.get("name") for m in grouped.iter("gavp"))
        else:
            raw = type_elem.get("type-name") if type_elem is not None else "OctetString"
            avp_type = TYPE_MAP.get(raw, raw)
            members = ()
        enums = {int(e.get("code")): e.get("name") for e in elem.iter("enum")}
        mandatory = elem.get("mandatory", "must") == "must"
        rows.append((name, int(elem.get("code")), vendor, avp_type, mandatory, enums, members))
    rows.extend(EXTRA_DEFS)
    rows.sort(key=lambda r: (r[2], r[1]))

    out = sys.stdout
    out.write('"""Diameter AVP table for chargeway (GENERATED by gen_avp_table.py; edit the generator).\n\n')
    out.write("Facts from RFC 6733, RFC 4006/8506, RFC 7155 and 3GPP TS 32.299: one row per AVP,\n")
    out.write("(name, code, vendor, type, M bit set when sending, enum values, grouped member names).\n")
    out.write('"""\n\n')
    out.write("from __future__ import annotations\n\n")
    out.write("AVP_ROWS: tuple[tuple[str, int, int, str, bool, dict[int, str], tuple[str, ...]], ...] = (\n")
    for row in rows:
        out.write(f"    {row!r},\n")
    out.write(")\n")


if __name__ == "__main__":
    main()
