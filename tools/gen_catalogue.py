#!/usr/bin/env python3
"""Generate schemas/catalogue.json (dccgw-catalogue/1) from the public DUIS reference data.

Reads, by path and never copying them:
  $DCCGW_ANCHORS/metadata/srv-table-derived.json   (flags, roles; join of the duis-parser matrix
                                                     with the XSD's CV comments)
  $DCCGW_ANCHORS/schemas/duis-5.4/DUIS Schema V5.4.xsd  (the sr:Request Body choice)
DCCGW_ANCHORS defaults to ../shared/anchors relative to the repository root.

Decisions it applies (see schemas/README.md):
  * Command Variants follow the rule of the domain brief, section 4, not the XSD's CV comments:
    critical -> 4,5,6,7; non-critical device -> 1,2,3; non-device -> 8; 8.1.1 -> 4,5; 8.5 -> 1.
    Every SRV where the XSD comment disagrees is printed on stderr.
  * "Future Dated Response Pattern": No -> none, DSP -> dsp, Device -> device,
    "DSP & Device" -> dsp_and_device. Any other raw value stops the script.
  * body_element: the n-th element of the Body choice belongs to the n-th SRV; the choice's
    "Service Ref N.x" comment must name the SRV's first part, and the counts must agree.

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
