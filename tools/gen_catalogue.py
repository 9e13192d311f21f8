#!/usr/bin/env python3
"""Generate schemas/catalogue.json (dccgw-catalogue/1) from the public DUIS reference data.

Reads, by path and never copying them:
  $DCCGW_ANCHORS/metadata/srv-table-derived.json   (flags, roles; join of the duis-parser matrix
                                                     with the XSD's CV comments)
  $DCCGW_ANCHORS/schemas/duis-5.4/DUIS Schema V5.4.xsd  (the sr:Request Body choice)
  $DCCGW_ANCHORS/metadata/gbcs-mapping-table.json  (GBCS use case -> service reference)
  the names of $DCCGW_ANCHORS/duis-samples/{templates,requests}/*  (use case -> SRV)
DCCGW_ANCHORS defaults to ../shared/anchors relative to the repository root.

Decisions it applies (see schemas/README.md):
  * Command Variants follow the rule of the domain brief, section 4, not the XSD's CV comments:
    critical -> 4,5,6,7; non-critical device -> 1,2,3; non-device -> 8; 8.1.1 -> 4,5; 8.5 -> 1.
    Every SRV where the XSD comment disagrees is printed on stderr.
  * "Future Dated Response Pattern": No -> none, DSP -> dsp, Device -> device,
    "DSP & Device" -> dsp_and_device. Any other raw value stops the script.
  * body_element: the n-th element of the Body choice belongs to the n-th SRV; the choice's
    "Service Ref N.x" comment must name the SRV's first part, and the counts must agree.
  * device_types: the device types a device SRV may target (E11 otherwise), derived from the
    GBCS use cases that carry it; see device_types() and schemas/README.md.

Usage: python3 tools/gen_catalogue.py > schemas/catalogue.json
"""

import json
import os
import re
import sys
import xml.etree.ElementTree as ET

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ANCHORS = os.environ.get("DCCGW_ANCHORS", os.path.join(ROOT, "..", "shared", "anchors"))
ROLE_ORDER = ["IS", "ES", "GS", "RSA", "ED", "GT", "OU"]
FUTURE_DATED = {"No": "none", "DSP": "dsp", "Device": "device", "DSP & Device": "dsp_and_device"}
YES_NO = {"Yes": True, "No": False}
XS = "{http://www.w3.org/2001/XMLSchema}"

# --- device_types -------------------------------------------------------------------------------
# Device types in the order the catalogue writes them (the domain's DeviceType order).
DEVICE_ORDER = ["ESME", "GSME", "GPF", "CHF", "PPMID", "IHD", "CAD", "HCALCS"]
# What a GBCS use case's code prefix says about the device it is sent to. CS ("common") use cases
# go to any device that takes remote GBCS commands; IHDs and CADs take none.
USE_CASE_PREFIX = [
    ("DBCH", {"CHF"}),
    ("ECS", {"ESME"}),
    ("GCS", {"GSME", "GPF"}),
    ("CCS", {"CHF"}),
    ("CS", {"ESME", "GSME", "GPF", "CHF", "PPMID", "HCALCS"}),
]
# Devices a use case (or SRV) name mentions are added to its prefix's.
NAMED_DEVICES = [
    (r"\bESME\b", "ESME"),
    (r"\bGSME\b", "GSME"),
    (r"\bGPF\b|Gas Proxy Function", "GPF"),
    (r"\bCHF?\b|Comms Hub|Communications Hub", "CHF"),
    (r"\bPPMID\b", "PPMID"),
    (r"\bHCALCS\b", "HCALCS"),
]
ELECTRICITY_ROLES, GAS_ROLES = {"IS", "ES", "ED"}, {"GS", "GT"}
ELECTRICITY_ONLY, GAS_ONLY = {"ESME", "HCALCS"}, {"GSME", "GPF"}
# Device SRVs no public use case reaches, even through a sibling variant: (types, reason).
NO_USE_CASE = {
    "6.21": (
        ["ESME", "GSME", "GPF", "CHF", "PPMID", "HCALCS"],
        "a handover replaces the supplier's security credentials on the device (GBCS CS02b, as "
        "for 6.15 and 6.23): any device that holds them",
    ),
    "7.5": (["ESME"], "auxiliary load switches are the ESME's (7.6 is ECS47 by its template)"),
    "7.7": (["ESME"], "auxiliary load switches are the ESME's (7.6 is ECS47 by its template)"),
    "7.8": (["ESME"], "auxiliary load switches are the ESME's (7.6 is ECS47 by its template)"),
}


def use_case_devices(code, name):
    """The device types a use case goes to, or None for a code that is no remote use case."""
    for prefix, devices in USE_CASE_PREFIX:
        if code.startswith(prefix) and code[len(prefix) : len(prefix) + 1].isdigit():
            out = set(devices)
            out.update(d for pattern, d in NAMED_DEVICES if re.search(pattern, name))
            return out
    return None


def use_case_links():
    """[(code, key, devices)]: key is a service reference or SRV the use case carries."""
    with open(os.path.join(ANCHORS, "metadata", "gbcs-mapping-table.json"), encoding="utf-8") as f:
        mapping = json.load(f)
    by_code = {}
    links = []
    for row in mapping:
        code, keys = row["Code"], row["Service Reference"]
        devices = use_case_devices(code, row["Use Case Name"])
        if devices is None:
            continue
        by_code.setdefault(code, set()).update(devices)
        for key in (keys or "").split(","):
            key = key.strip()
            if re.fullmatch(r"\d+(\.\d+){1,2}", key):
                links.append((code, key, devices))
    # The public request templates are named <use case>[qualifier]_<SRV>_…: they pin use cases
    # the mapping table leaves at "See GBCS" (or at a service reference) to one SRV.
    codes = sorted(by_code, key=len, reverse=True)
    pinned = {}
    for folder in ("templates", "requests"):
        for name in sorted(os.listdir(os.path.join(ANCHORS, "duis-samples", folder))):
            name = name.split("__", 1)[-1]
            m = re.match(r"^([A-Z]+[0-9][A-Za-z0-9]*?)_(\d+(?:\.\d+){1,2})_", name)
            if not m:
                continue
            code = next((c for c in codes if name.startswith(c)), None)
            devices = by_code.get(code) if code else use_case_devices(m.group(1), "")
            if devices:
                links.append((code or m.group(1), m.group(2), devices))
                pinned.setdefault(code or m.group(1), set()).add(m.group(2))
    return links, pinned


def device_types(rows, links, pinned):
    """{srv: [device types]} for every device SRV.

    1. A use case carried by a service reference counts for each of its variants, unless the
       templates pin it to particular variants; one carried by an SRV counts for that SRV.
    2. A variant no use case reaches takes its sibling variants' devices (6.15.2, 8.8.1), and
       failing that the NO_USE_CASE table. Devices the SRV's own name mentions are added
       (8.12.2 Restore Gas Proxy Function Device Log: GPF).
    3. Fuel: when every eligible role is an electricity role (IS ES ED; RSA and OU count for
       both fuels) gas meters and GPFs are dropped, and when every one is a gas role, ESMEs and
       HCALCS; when an eligible role's fuel has no meter left, that fuel's meters are added (a
       GS-eligible service must reach a gas meter: 6.11 Synchronise Clock).
    """
    found = {}
    for row in rows:
        if row["non_device"] == "Yes":
            continue
        srv = row["srv"]
        ref = ".".join(srv.split(".")[:2])
        devices = set()
        for code, key, d in links:
            if key == srv or (key == ref and (code not in pinned or srv in pinned[code])):
                devices |= d
        found[srv] = devices
    out = {}
    for row in rows:
        srv = row["srv"]
        if srv not in found:
            continue
        devices = set(found[srv])
        if not devices:
            ref = ".".join(srv.split(".")[:2])
            for other, d in found.items():
                if other != srv and ".".join(other.split(".")[:2]) == ref:
                    devices |= d
        if not devices and srv in NO_USE_CASE:
            devices = set(NO_USE_CASE[srv][0])
        if not devices:
            sys.exit(f"{srv}: no public use case names its device types")
        devices.update(d for pattern, d in NAMED_DEVICES if re.search(pattern, row["name"]))
        roles = set(row["eligible_user_roles"])
        electric, gas = bool(roles & ELECTRICITY_ROLES), bool(roles & GAS_ROLES)
        if electric and not gas:
            devices -= GAS_ONLY
        if gas and not electric:
            devices -= ELECTRICITY_ONLY
        if electric and "ESME" not in devices and not devices - GAS_ONLY - ELECTRICITY_ONLY:
            devices.add("ESME")
        if gas and not devices & GAS_ONLY and not devices - GAS_ONLY - ELECTRICITY_ONLY:
            devices |= GAS_ONLY
        out[srv] = sorted(devices, key=DEVICE_ORDER.index)
    return out


def allowed_cvs(srv, critical, non_device):
    if srv == "8.1.1":
        return [4, 5]
    if srv == "8.5":
        return [1]
    if critical:
        return [4, 5, 6, 7]
    if non_device:
        return [8]
    return [1, 2, 3]


def body_choice(xsd_path):
    """[(section comment, element name)] of sr:Request's Body choice, in document order."""
    parser = ET.XMLParser(target=ET.TreeBuilder(insert_comments=True))
    with open(xsd_path, "rb") as f:
        tree = ET.parse(f, parser)
    request = next(
        t for t in tree.getroot().findall(XS + "complexType") if t.get("name") == "Request"
    )
    body = next(e for e in request.iter(XS + "element") if e.get("name") == "Body")
    choice = body.find(f"{XS}complexType/{XS}choice")
    out, section = [], None
    for child in choice:
        if child.tag is ET.Comment:
            section = child.text.strip()
        elif child.tag == XS + "element":
            out.append((section, child.get("name")))
    return out


def main():
    table_path = os.path.join(ANCHORS, "metadata", "srv-table-derived.json")
    xsd_path = os.path.join(ANCHORS, "schemas", "duis-5.4", "DUIS Schema V5.4.xsd")
    with open(table_path, encoding="utf-8") as f:
        rows = json.load(f)["service_requests"]
    choice = [c for c in body_choice(xsd_path) if c[1] != "SignedPreCommand"]
    if len(choice) != len(rows):
        sys.exit(f"{len(rows)} SRVs but {len(choice)} request body elements")

    links, pinned = use_case_links()
    targets = device_types(rows, links, pinned)

    services = []
    for row, (section, element) in zip(rows, choice):
        srv = row["srv"]
        if section != f"Service Ref {srv.split('.')[0]}.x":
            sys.exit(f"{srv}: body element {element} sits under '{section}'")
        critical = YES_NO[row["critical"]]
        non_device = YES_NO[row["non_device"]]
        cvs = allowed_cvs(srv, critical, non_device)
        if cvs != row["allowed_command_variants_xsd_5_4"]:
            print(
                f"{srv}: XSD comment says CV {row['allowed_command_variants_xsd_5_4']}, "
                f"rule says {cvs} (critical={critical}, non_device={non_device})",
                file=sys.stderr,
            )
        roles = row["eligible_user_roles"]
        if len(set(roles)) != len(roles) or not set(roles) <= set(ROLE_ORDER):
            sys.exit(f"{srv}: odd roles {roles}")
        services.append(
            {
                "srv": srv,
                "service_reference": ".".join(srv.split(".")[:2]),
                "name": " ".join(row["name"].split()),
                "critical": critical,
                "on_demand": YES_NO[row["on_demand"]],
                "future_dated": FUTURE_DATED[row["future_dated_response_pattern"]],
                "dcc_scheduled": YES_NO[row["dcc_scheduled"]],
                "non_device": non_device,
                "roles": sorted(roles, key=ROLE_ORDER.index),
                "command_variants": cvs,
                "body_element": element,
                "device_types": targets.get(srv, []),
            }
        )

    # One service a line: readable, and a change to one SRV is a one-line diff.
    lines = [json.dumps(s, ensure_ascii=False) for s in services]
    sys.stdout.write(
        '{ "format": "dccgw-catalogue/1", "duis_schema_version": "5.4",\n  "services": [\n    '
        + ",\n    ".join(lines)
        + "\n  ]\n}\n"
    )


if __name__ == "__main__":
    main()
