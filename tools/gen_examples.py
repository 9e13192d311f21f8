#!/usr/bin/env python3
"""Writes examples/requests/: one unsigned DUIS 5.4 request per user-requestable SRV whose body
the schema allows to be empty (or that has a body written below), addressed to the demo's
identities, and examples/requests/README.md indexing them. Our own XML, made from the catalogue
(schemas/catalogue.json); `tests/gateway/examples.rs` signs each one, validates it against the
DUIS 5.4 XSD and sends it to a gateway with the demo register.

Run from the repository root: python3 tools/gen_examples.py [--keep SRV...]
With --check-xsd DIR (a directory holding duis.xsd prepared as `duis::testing::DuisXsd` does),
bodies that do not validate empty are left out and listed.
"""

import json
import os
import subprocess
import sys
import tempfile

DCC = "90-B3-D5-1F-30-00-00-02"
SUPPLIER = "90-B3-D5-1F-30-01-00-00"
NETWORK_OPERATOR = "90-B3-D5-1F-30-02-00-00"
OTHER_USER = "00-DB-12-34-56-78-00-04"
# The demo's devices by type (src/demo.rs).
DEVICES = {
    "ESME": "00-DB-12-34-56-78-90-A0",
    "GSME": "00-DB-12-34-56-78-90-A1",
    "GPF": "00-DB-12-34-56-78-90-A3",
    "CHF": "00-DB-12-34-56-78-90-A2",
    "PPMID": "00-DB-12-34-56-78-90-A4",
    "HCALCS": "00-DB-12-34-56-78-90-A5",
}
USER_FOR_ROLE = {
    "IS": SUPPLIER, "GS": SUPPLIER, "ES": SUPPLIER, "RSA": SUPPLIER,
    "ED": NETWORK_OPERATOR, "GT": NETWORK_OPERATOR, "OU": OTHER_USER,
}
ROLE_PREFERENCE = ["IS", "GS", "ED", "GT", "OU", "ES", "RSA"]
SERVICE_FOR_CV = {1: "serviceS", 3: "serviceS", 5: "serviceS", 7: "serviceS",
                  4: "serviceT", 2: "serviceD", 6: "serviceD", 8: "serviceD"}
# Counters are stamped afresh by `dccgw sign --stamp-counter`; these are placeholders.
COUNTER = 1000000000000

# Bodies that cannot be empty, written by hand (our own values).
BODIES = {
    "8.2": "<sr:ReadInventory><sr:DeviceID>" + DEVICES["ESME"] + "</sr:DeviceID></sr:ReadInventory>",
}


def first_cv(entry):
    """CV1 or CV8 where allowed (the plain flows); otherwise CV4 (critical: Transform)."""
    cvs = entry["command_variants"]
    for cv in (1, 8, 4, 2, 3, 5, 6, 7):
        if cv in cvs:
            return cv
    return None


def request(entry):
    role = next((r for r in ROLE_PREFERENCE if r in entry["roles"]), None)
    cv = first_cv(entry)
    if role is None or cv is None:
        return None
    user = USER_FOR_ROLE[role]
    if entry["non_device"]:
        target = DCC
    else:
        types = entry["device_types"]
        kind = next((t for t in ["ESME", "GSME", "GPF", "CHF", "PPMID", "HCALCS"] if t in types), None)
        if kind is None:
            return None
        if role in ("GS", "GT") and "GSME" in types:
            kind = "GSME"
        target = DEVICES[kind]
    element = entry["body_element"]
    body = BODIES.get(entry["srv"], "<sr:%s/>" % element).format(device=target)
    xml = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<sr:Request xmlns:sr="http://www.dccinterface.co.uk/ServiceUserGateway" schemaVersion="5.4">\n'
        "  <sr:Header>\n"
        f"    <sr:RequestID>{user}:{target}:{COUNTER}</sr:RequestID>\n"
        f"    <sr:CommandVariant>{cv}</sr:CommandVariant>\n"
        f"    <sr:ServiceReference>{entry['service_reference']}</sr:ServiceReference>\n"
        f"    <sr:ServiceReferenceVariant>{entry['srv']}</sr:ServiceReferenceVariant>\n"
        "  </sr:Header>\n"
        f"  <sr:Body>\n    {body}\n  </sr:Body>\n"
        "</sr:Request>\n"
    )
    return {"xml": xml, "role": role, "cv": cv, "service": SERVICE_FOR_CV[cv], "user": user,
            "target": target}


def validates(xml, xsd_dir):
    """Whether the request, with a placeholder signature, validates (the schema requires one)."""
    sig = ('<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo>'
           '<ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>'
           '<ds:SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"/>'
           '<ds:Reference URI=""><ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/>'
           '<ds:DigestValue>AA==</ds:DigestValue></ds:Reference></ds:SignedInfo>'
           '<ds:SignatureValue>AA==</ds:SignatureValue></ds:Signature>')
    doc = xml.replace("</sr:Request>", sig + "</sr:Request>")
    with tempfile.NamedTemporaryFile("w", suffix=".xml", delete=False) as f:
        f.write(doc)
    try:
        r = subprocess.run(["xmllint", "--noout", "--schema", os.path.join(xsd_dir, "duis.xsd"), f.name],
                           capture_output=True, text=True)
        return r.returncode == 0
    finally:
        os.unlink(f.name)


def main():
    args = sys.argv[1:]
    xsd_dir = args[args.index("--check-xsd") + 1] if "--check-xsd" in args else None
    catalogue = json.load(open("schemas/catalogue.json"))["services"]
    out = "examples/requests"
    os.makedirs(out, exist_ok=True)
    rows, missing = [], []
    for entry in catalogue:
        made = request(entry)
        if made is None:
            continue
        if xsd_dir and not validates(made["xml"], xsd_dir):
            missing.append(entry)
            continue
        name = f"{entry['srv']}.xml"
        with open(os.path.join(out, name), "w") as f:
            f.write(made["xml"])
        rows.append((entry, made, name))
    with open(os.path.join(out, "README.md"), "w") as f:
        f.write(
            "# Example requests\n\n"
            "Generated by `tools/gen_examples.py` from the catalogue: one request per user-requestable\n"
            "SRV with a body written here (most are empty elements), addressed from the demo Users to the\n"
            "demo devices (`dccgw demo`). Sign and send one (from the repository root, with the demo running):\n\n"
            "```sh\n"
            "dccgw sign --stamp-counter --key certs/dev/users/supplier/xml-sign.key.pem \\\n"
            "  --cert certs/dev/users/supplier/xml-sign.pem examples/requests/4.1.1.xml \\\n"
            "  | curl --cacert certs/dev/ca.pem --cert certs/dev/users/supplier/client.pem \\\n"
            "    -H 'Content-Type: application/xml' --data-binary @- https://127.0.0.1:8443/api/v1/serviceS\n"
            "```\n\n"
            "Sign with the key of the User the RequestID names (`supplier`, `network-operator` or\n"
            "`other-user` under `certs/dev/users/`) and send to the service the table gives.\n\n"
            "| SRV | name | CV | URL | User (role) | target |\n|---|---|---|---|---|---|\n"
        )
        names = {SUPPLIER: "supplier", NETWORK_OPERATOR: "network-operator", OTHER_USER: "other-user"}
        for entry, made, name in rows:
            f.write(f"| [{entry['srv']}]({name}) | {entry['name']} | {made['cv']} | "
                    f"`/api/v1/{made['service']}` | {names[made['user']]} ({made['role']}) | "
                    f"`{made['target']}` |\n")
        if missing:
            f.write("\nNot yet here (their bodies have required content to write): "
                    + ", ".join(e["srv"] for e in missing) + ".\n")
    print(f"{len(rows)} examples written, {len(missing)} left out", file=sys.stderr)


if __name__ == "__main__":
    main()
