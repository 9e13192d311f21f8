#!/usr/bin/env python3
"""Writes examples/requests/: one unsigned DUIS 5.4 request for every SRV a demo User may send
(`dccgw demo`), with a body of our own written from the DUIS 5.4 XSD (most bodies of reads are
empty elements), and a few variants (Command Variants 2 and 3, future-dated requests the DSP
or the device holds); and examples/requests/README.md, the index that names each file's URL,
User and target. Made from the catalogue (schemas/catalogue.json), so that a new SRV shows up
here (and, without a body, fails the check). `tests/gateway/examples.rs` signs each example,
validates it against the DUIS 5.4 XSD and sends it to a gateway with the demo register;
`tests/gateway/conformance/` takes its own bodies from these files too.

Run from the repository root: python3 tools/gen_examples.py [--out DIR] (DIR: examples/requests
unless told; `tests/gateway/examples.rs` writes them elsewhere and compares them with the
committed ones). With --check-xsd DIR (a directory holding duis.xsd prepared as `duis::testing::DuisXsd` does),
each example is validated (with a placeholder signature) and the run fails on the first that
does not.
"""

import hashlib
import base64
import json
import os
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

DCC = "90-B3-D5-1F-30-00-00-02"
SUPPLIER = "90-B3-D5-1F-30-01-00-00"
NETWORK_OPERATOR = "90-B3-D5-1F-30-02-00-00"
OTHER_USER = "00-DB-12-34-56-78-00-04"
# The demo Users and their roles (src/demo.rs, DEMO_USERS).
USERS = {SUPPLIER: ("supplier", ["IS", "GS"]), NETWORK_OPERATOR: ("network-operator", ["ED", "GT"]),
         OTHER_USER: ("other-user", ["OU"])}
# The demo's devices by type (src/demo.rs, DEMO_DEVICES) and its meter points.
DEVICES = {
    "ESME": "00-DB-12-34-56-78-90-A0",
    "GSME": "00-DB-12-34-56-78-90-A1",
    "CHF": "00-DB-12-34-56-78-90-A2",
    "GPF": "00-DB-12-34-56-78-90-A3",
    "PPMID": "00-DB-12-34-56-78-90-A4",
    "HCALCS": "00-DB-12-34-56-78-90-A5",
}
MPAN = "1200023305967"
MPRN = "3453612"
# A comms hub the DCC's own services bring in: pre-notified (12.2), installed (8.14.2, 8.14.1),
# returned (8.14.4).
NEW_HUB = "00-DB-12-34-56-78-90-B0"
ROLE_PREFERENCE = ["IS", "GS", "ED", "GT", "OU", "ES", "RSA"]
SERVICE_FOR_CV = {1: "serviceS", 3: "serviceS", 5: "serviceS", 7: "serviceS",
                  4: "serviceT", 2: "serviceD", 6: "serviceD", 8: "serviceD"}
# Counters are stamped afresh by `dccgw sign --stamp-counter`; this is a placeholder.
COUNTER = 1000000000000
# The placeholder `ExecutionDateTime` of the future-dated examples: set it to a time ahead
# (the index says how).
LATER = "2027-01-01T00:00:00Z"

# A self-signed P-256 certificate made for these examples (CN=Demo Supplier DS, OU=02): what
# the credential services carry. It is no SMKI certificate: the demo's devices take the update
# as they take any, and nothing trusts it.
CERT = ("MIIBpTCCAUugAwIBAgIUJAX/tAatU457uKgidFrVJXahEEIwCgYIKoZIzj0EAwIwKDEZMBcGA1UEAwwQRGVtbyBTdXBw"
        "bGllciBEUzELMAkGA1UECwwCMDIwHhcNMjYxMjA3MDcyNzM0WhcNMzYxMjA0MDcyNzM0WjAoMRkwFwYDVQQDDBBEZW1v"
        "IFN1cHBsaWVyIERTMQswCQYDVQQLDAIwMjBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABFAiNuYpyzbj0qKtJ0PnAtXr"
        "mx/WOSiNPr2QaQRRFBImZgQV3K+vDdwU6V4bGTCCzFopOJ3JQY4DasjykhIUP/mjUzBRMB0GA1UdDgQWBBQrXM6aC1n3"
        "nY5Dc9u1Kc6eJuN21DAfBgNVHSMEGDAWgBQrXM6aC1n3nY5Dc9u1Kc6eJuN21DAPBgNVHRMBAf8EBTADAQH/MAoGCCqG"
        "SM49BAMCA0gAMEUCIA+piFnCHVFmqMJ/Xa9fn2GgZjwINxDO3al3eXRHZYqXAiEAsOXQ2EHSOPotD8F5/lC6SX8+OKph"
        "HWCXOaO8Zx3tZJI=")
# A firmware image for 11.1 (a stand-in: the demo's hubs take any bytes), and its hash for 11.3.
FIRMWARE = b"dccgw demo firmware 2.0\n"
FIRMWARE_B64 = base64.b64encode(FIRMWARE).decode()
FIRMWARE_HASH = hashlib.sha256(FIRMWARE).hexdigest().upper()


def el(name, inner="", **attrs):
    """`<sr:name attrs>inner</sr:name>` (empty element when there is no content)."""
    a = "".join(f' {k}="{v}"' for k, v in attrs.items())
    inner = str(inner)
    return f"<sr:{name}{a}>{inner}</sr:{name}>" if inner else f"<sr:{name}{a}/>"


def date(year=None, month=None, day=None, weekday=None):
    """A DUIS `Date` with wildcards where a part is not given."""
    return (el("Year", el("SpecifiedYear", year) if year else el("NonSpecifiedYear"))
            + el("Month", el("SpecifiedMonth", month) if month else el("NonSpecifiedMonth"))
            + el("DayOfMonth", el("SpecifiedDayOfMonth", day) if day else el("NonSpecifiedDayOfMonth"))
            + el("DayOfWeek", el("SpecifiedDayOfWeek", weekday) if weekday else el("NonSpecifiedDayOfWeek")))


def week_profile(day_name=1):
    """Week 1: every day of the week is day profile `day_name`."""
    return el("WeekProfile", el("WeekName", 1) + "".join(
        el("ReferencedDayName", day_name, index=i) for i in range(1, 8)))


def days(*names):
    return el("DaysOfWeekApplicability", "".join(
        el("DayOfWeekApplicability", el("DayOfWeekID", n)) for n in names))


# One season, all year, on week profile 1.
ALL_YEAR = el("Seasons", el("Season", el("SeasonName", "AllYear")
                             + el("SeasonStartDate", date(month=1, day=1))
                             + el("ReferencedWeekName", 1)))
# A day rate from 07:00 and a night rate from 00:00 (TOU actions 2 and 1).
DAY_NIGHT = el("DayProfiles", el("DayProfile", el("DayName", 1)
                                 + el("ProfileSchedule", el("StartTime", "00:00:00") + el("TOUTariffAction", 1))
                                 + el("ProfileSchedule", el("StartTime", "07:00:00") + el("TOUTariffAction", 2))))
# Prices in units of 10^-4 GBP: 45p a day standing charge, 15p and 28p a kWh.
ELEC_PRICES = el("ElectricityPriceElements", el("StandingCharge", 4500) + el("StandingChargeScale", -4)
                 + el("PriceScale", -4)
                 + el("TOUTariff", el("TOUPrice", 1500, index=1) + el("TOUPrice", 2800, index=2)))
# A day of a log.
READ_LOG = el("ReadLogPeriod", el("StartDateTime", "2026-01-01T00:00:00Z") + el("EndDateTime", "2026-01-02T00:00:00Z"))
SCHEDULE_ALL_YEAR = (el("SwitchTime", "00:30:00") + el("StartDate", date(month=1, day=1))
                     + el("EndDate", date(month=12, day=31)))

# Our bodies: SRV -> the content of the body element (the element is written around it), or
# (attributes, content). An SRV not here gets an empty body element.
BODIES = {
    "1.1.1": el("ElecTariffElements", el("CurrencyUnits", "GBP")
                + el("SwitchingTable", DAY_NIGHT + el("WeekProfiles", week_profile()) + ALL_YEAR)
                + el("SpecialDays")
                + el("ThresholdMatrix", "".join(
                    el("Thresholds", el("BlockThreshold", 0, index=1), index=i) for i in range(1, 9))))
    + el("PriceElements", ELEC_PRICES),
    "1.1.2": el("SwitchingTable", DAY_NIGHT + el("WeekProfiles", week_profile()) + ALL_YEAR)
    + el("SpecialDays")
    + el("PriceElements", el("PriceScale", -4) + el("ElectricityPriceElement", 1200, index=1)
         + el("ElectricityPriceElement", 2400, index=2)),
    "1.2.1": el("PriceElements", ELEC_PRICES),
    "1.2.2": el("PriceElements", el("PriceScale", -4) + el("ElectricityPriceElement", 1200, index=1)),
    "1.5": el("PrepaymentMode", el("AdjustMeterBalance", 1000)),
    "1.6": el("Prepayment", el("SuspendDebtDisabled", "false") + el("SuspendDebtEmergency", "false")
              + el("DisablementThreshold", 0)),
    "2.1": el("UpdatePrepayConfigElectricity", el("DebtRecoveryRateCap", 1000)
              + el("EmergencyCreditLimit", 1000) + el("EmergencyCreditThreshold", 200)
              + el("LowCreditThreshold", 300)
              + el("ElectricityNonDisablementCalendar", el("ElectricitySpecialDays")
                   + el("ElectricityNonDisablementSchedule", el("NonDisablementScript", "START")
                        + el("SpecialDaysApplicability") + days("Friday")
                        + el("ScheduleDatesAndTime", el("SwitchTime", "16:00:00")
                             + el("StartDate", "2027-01-01") + el("EndDate", "2027-12-31")))
                   + el("ElectricityNonDisablementSchedule", el("NonDisablementScript", "STOP")
                        + el("SpecialDaysApplicability") + days("Monday")
                        + el("ScheduleDatesAndTime", el("SwitchTime", "10:00:00")
                             + el("StartDate", "2027-01-01") + el("EndDate", "2027-12-31"))))
              + el("MaxMeterBalance", 50000) + el("MaxCreditThreshold", 20000)),
    "2.2": el("UTRN", "73470123456789012345"),
    "2.3": el("TimeDebtRegister1", 0) + el("TimeDebtRegister2", 0) + el("PaymentDebtRegister", 5000)
    + el("DebtRecoveryPerPayment", 2500)
    + el("ElecDebtRecovery1", el("DebtRecoveryRate", 50) + el("DebtRecoveryRatePriceScale", -2)
         + el("DebtRecoveryRatePeriod", "DAILY"))
    + el("ElecDebtRecovery2", el("DebtRecoveryRate", 0) + el("DebtRecoveryRatePriceScale", -2)
         + el("DebtRecoveryRatePeriod", "DAILY")),
    "3.1": el("SupplierMessage", "Your smart meter is ready. Thank you."),
    "3.2": el("RestrictionDateTime", "2026-12-01T00:00:00Z"),
    "3.4": el("SupplierName", "Demo Supplier") + el("SupplierTelephoneNumber", "0800 000 000"),
    "4.4.2": READ_LOG, "4.4.3": READ_LOG, "4.4.4": READ_LOG, "4.4.5": READ_LOG, "4.6.1": READ_LOG,
    "4.6.2": READ_LOG, "4.8.1": READ_LOG, "4.8.2": READ_LOG, "4.8.3": READ_LOG, "4.10": READ_LOG,
    "4.14": READ_LOG, "4.17": READ_LOG, "7.11": READ_LOG, "6.32": READ_LOG,
    "5.1": el("ScheduleFrequency", "Daily") + el("ScheduleStartDate", "2026-01-01")
    + el("ScheduleExecutionStartTime", "01:00:00")
    + el("DSPScheduledServiceReference", "4.8") + el("DSPScheduledServiceReferenceVariant", "4.8.1")
    + el("DeviceID", DEVICES["ESME"])
    + el("DSPReadActiveImportProfileData", el("StartDateOffset", -1) + el("StartTime", "00:00:00")
         + el("EndDateOffset", 0) + el("EndTime", "00:00:00")),
    "5.2": el("DeviceID", DEVICES["ESME"]),
    # The schedule 5.1 answered with (the index says how to use it).
    "5.3": el("DSPScheduleID", 1),
    "6.4.1": el("LoadLimitPeriod", 1800) + el("LoadLimitPowerThreshold", 10000)
    + el("LoadLimitRestorationPeriod", 600) + el("LoadLimitSupplyState", "Unchanged"),
    "6.5": el("RMSVoltageSettings", el("RMSExtremeOverVoltageMeasurementPeriod", 10)
              + el("RMSExtremeOverVoltageThreshold", 280) + el("RMSExtremeUnderVoltageMeasurementPeriod", 10)
              + el("RMSExtremeUnderVoltageThreshold", 180) + el("RMSVoltageSagMeasurementPeriod", 10)
              + el("RMSVoltageSagThreshold", 200) + el("RMSVoltageSwellMeasurementPeriod", 10)
              + el("RMSVoltageSwellThreshold", 260))
    + el("SinglePhaseVoltageSettings", el("AverageRMSOverVoltageThreshold", 253)
         + el("AverageRMSUnderVoltageThreshold", 216) + el("AverageRMSVoltageMeasurementPeriod", 600)),
    "6.6": el("CalorificValue", "39.5") + el("ConversionFactor", "1.02264"),
    "6.7": el("UncontrolledGasFlowRate", 10) + el("SupplyDepletionState", "Locked")
    + el("SupplyTamperState", "Locked") + el("StabilisationPeriod", 30) + el("MeasurementPeriod", 3600),
    "6.8": el("ElectricityBillingCalendar", el("BillingTime", "00:00:00") + el("Monthly", 1)),
    "6.11": el("CurrentDateTime", "2026-01-01T00:00:00Z") + el("TolerancePeriod", 60),
    "6.12": el("LowMediumPowerThreshold", 2000) + el("MediumHighPowerThreshold", 6000),
    "6.13": READ_LOG + el("LogToRead", "Event"),
    "6.14.1": el("ALCSHCALCSDescription", el("SwitchDescription", "Storage heater"), index=1),
    "6.14.2": el("ALCSHCALCSConnectionSchedule", el("ActivateDeactivateSwitch", el("ActivateSwitch"), index=1)
                 + days("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
                 + el("ALCSScheduleDatesAndTime", SCHEDULE_ALL_YEAR))
    + el("ALCSHCALCSSpecialDays") + el("SwitchTypeAndId", el("ALCS"), index=1),
    "6.14.3": el("AuxiliaryControllerSchedule",
                 el("AuxiliaryControllerAction", el("CommandedStateLevel", 100), auxiliaryControllerN=1)
                 + days("Saturday", "Sunday")
                 + el("AuxiliaryControllerSchedulePeriodAndTime", SCHEDULE_ALL_YEAR))
    + el("AuxiliaryControllerSpecialDayDefinitions"),
    "6.15.1": el("RemotePartyRole", "Supplier")
    + el("ReplacementCertificates", el("SupplierOrNetworkOperatorCertificates", el("DigitalSigningCertificate", CERT)))
    + el("CertificationPathCertificates", el("Certificate", CERT)) + el("ApplyTimeBasedCPVChecks", "false"),
    "6.15.2": el("DeviceCertificate", CERT),
    "6.17": el("CredentialType", "Digital Signature"),
    "6.18.1": el("MaximumDemandTimePeriodSchedule", el("StartTime", "16:00:00") + el("EndTime", "19:00:00")),
    "6.20.1": el("ImportMPANs", el("ImportMPAN", MPAN)),
    "6.21": el("RemotePartyRole", "Supplier")
    + el("ReplacementCertificates", el("DigitalSigningCertificate", CERT))
    + el("CertificationPathCertificates", el("Certificate", CERT)) + el("ApplyTimeBasedCPVChecks", "false"),
    "6.22": el("ElectricitySupplierAlerts", el("SupplierESMECommon", el("x8119", "Enable"))),
    "6.23": el("SupplierFloorSeqNumber", 0)
    + el("SupplierReplacementCertificates", el("DigitalSigningCertificate", CERT))
    + el("CertificationPathCertificates", el("Certificate", CERT)) + el("ApplyTimeBasedCPVChecks", "false")
    + el("ImportMPxN", MPAN),
    "6.24.1": el("RemotePartyRole", "Supplier"),
    "6.24.2": el("CredentialType", "Digital Signature"),
    "6.25": el("SupplyTamperState", "Locked"),
    "6.26": el("DailyTariffBlockCounterMatrixReset", "true"),
    "6.28": el("LowerBandSubGHzChannels0To26") + el("LowerBandSubGHzChannels27To34")
    + el("LowerBandSubGHzChannels35To61") + el("UpperBandSubGHzChannels0To26")
    + el("NormalLimitedDutyCycleThreshold", "1.0") + el("LimitedCriticalDutyCycleThreshold", "2.0")
    + el("MaximumSubGHzChannelChangesPerWeek", 1) + el("GSMECurfew", 2) + el("ChannelQuieterThreshold", 1)
    + el("ChannelNoisierThreshold", 0) + el("NonGSMEPoorCommsPercentageThreshold", "50.00")
    + el("NonGSMEPoorCommsMeasurementPeriods", 50) + el("LocalCHNoiseMeasurementPeriod", 61)
    + el("LocalCHFailurePercentage", "50.00") + el("LocalCHRetryPercentage", "50.00"),
    "7.5": el("ActivateALCSHCALCS", el("Duration", 60), index=1),
    "7.6": el("DeactivateALCSHCALCS", el("Duration", 60), index=1),
    "7.8": el("ResetALCSHCALCS", index=1),
    "7.9": "".join(el("AddToBoostButton", "true" if i == 1 else "false", index=i) for i in range(1, 6)),
    "7.10": "".join(el("RemoveFromBoostButton", "true" if i == 1 else "false", index=i) for i in range(1, 6)),
    "7.12": el("RandomisedOffsetLimit", 0),
    "7.13": ({"auxiliaryControllerN": 1},
             el("StartDateTime", "2027-01-01T16:00:00Z") + el("EndDateTime", "2027-01-01T19:00:00Z")
             + el("CommandedStateLevel", 50)),
    "8.1.1": el("CurrentDateTime", "2026-01-01T00:00:00Z") + el("TolerancePeriod", 60),
    "8.2": el("DeviceID", DEVICES["ESME"]),
    "8.3": el("DeviceID", DEVICES["ESME"]),
    "8.4": el("DeviceID", DEVICES["ESME"]) + el("UpdateDeviceDetails", el("DeviceModel", "Demo")),
    "8.7.1": el("OtherDeviceID", DEVICES["PPMID"]),
    "8.7.2": el("OtherDeviceID", DEVICES["PPMID"]),
    "8.8.1": el("OtherDeviceID", DEVICES["PPMID"]),
    "8.8.2": el("OtherDeviceID", DEVICES["PPMID"]),
    "8.11": el("DeviceID", "00-DB-12-34-56-78-90-A6") + el("RequestType", "Add")
    + el("AddDeviceToCHFWhitelist", el("JoinTimePeriod", 3600) + el("InstallCode", "0123456789ABCDEF")),
    "8.12.1": el("OldCHFID", DEVICES["CHF"]),
    "8.12.2": el("OldGPFID", DEVICES["GPF"]),
    # The command's RequestID and the device's answer (the index says where they come from).
    "8.13": el("OriginalRequestID", f"{SUPPLIER}:{DEVICES['ESME']}:{COUNTER}") + el("DeviceGBCSResponse", "AAAA"),
    "8.14.1": el("DeviceID", NEW_HUB) + el("CHFInstallType", "New CHF Install") + el("MPxN", MPAN)
    + el("AerialInstall", "false") + el("CHFLocation", "Deep indoors"),
    "8.14.2": el("DeviceID", NEW_HUB) + el("CHFInstallType", "CHF Install - no SM WAN") + el("MPxN", MPRN)
    + el("AerialInstall", "false") + el("CHFLocation", "Indoors on external wall") + el("PremiseType", "Terraced")
    + el("MetalObstructionCheck", "false") + el("ConnectivityObstructionCheck", "false")
    + el("SharedObstructionCheck", "false"),
    "8.14.3": el("DeviceID", DEVICES["CHF"]) + el("CHFFaultReturnType", "Fault identified post installation")
    + el("OtherDeviceID", DEVICES["GPF"]) + el("CHFConnectionMethod", "ESME") + el("CHFFaultReason", "LED Fault"),
    "8.14.4": el("DeviceID", NEW_HUB) + el("CHFNoFaultReturnType", "No Fault Return (general)"),
    "11.1": el("FirmwareImage", FIRMWARE_B64) + el("FirmwareVersion", "00000002") + el("DeviceIDList", DEVICES["ESME"]),
    "11.3": el("FirmwareHash", FIRMWARE_HASH),
    "11.4": el("FirmwareImage", "AAECAw==") + el("FirmwareVersion", "00000001") + el("DeviceIDList", DEVICES["PPMID"]),
    "12.1": el("UPRN", 10023456789),
    "12.2": el("DeviceID", NEW_HUB) + el("DeviceManufacturer", "Demo") + el("DeviceModel", "Demo")
    + el("DeviceType", "CHF"),
}

# Variants: (SRV, file suffix, Command Variant, future-dated, what the index says of it).
VARIANTS = [
    ("4.1.1", "cv2", 2, False, "the command returned for local delivery"),
    ("4.1.1", "cv3", 3, False, "sent, and returned for local delivery"),
    ("4.1.1", "future", 1, True, "future-dated: the DSP holds it until `ExecutionDateTime`"),
    ("1.6", "future", 4, True, "future-dated: the device holds it until `ExecutionDateTime`"),
]
# Notes for the index.
NOTES = {
    "5.3": "the `DSPScheduleID` the 5.1 answered",
    "8.13": "the RequestID of a command returned for local delivery and the device's answer",
    "8.14.3": "returns the demo's comms hub: send it last",
    "8.3": "decommissions the demo's electricity meter: send it last",
}


def first_cv(entry):
    """CV1 or CV8 where allowed (the plain flows); otherwise CV4 (critical: Transform)."""
    for cv in (1, 8, 4, 2, 3, 5, 6, 7):
        if cv in entry["command_variants"]:
            return cv
    return None


def acting(entry):
    """The demo User and role that may send the SRV: None when none may."""
    for role in ROLE_PREFERENCE:
        for user, (_, roles) in USERS.items():
            if role in entry["roles"] and role in roles:
                return user, role
    return None


def target_of(entry, role):
    if entry["non_device"]:
        return DCC
    types = entry["device_types"]
    if role in ("GS", "GT") and "GSME" in types:
        return DEVICES["GSME"]
    return next(DEVICES[t] for t in DEVICES if t in types)


def body_of(entry, future):
    name = entry["body_element"]
    attrs, inner = {}, BODIES.get(entry["srv"], "")
    if isinstance(inner, tuple):
        attrs, inner = inner
    if future:
        inner = el("ExecutionDateTime", LATER) + inner
    return el(name, inner, **attrs)


def request(entry, cv=None, future=False):
    made = acting(entry)
    cv = cv or first_cv(entry)
    if made is None or cv is None:
        return None
    user, role = made
    target = target_of(entry, role)
    xml = (
        f'<sr:Request xmlns:sr="{SR}" schemaVersion="5.4">'
        "<sr:Header>"
        f"<sr:RequestID>{user}:{target}:{COUNTER}</sr:RequestID>"
        f"<sr:CommandVariant>{cv}</sr:CommandVariant>"
        f"<sr:ServiceReference>{entry['service_reference']}</sr:ServiceReference>"
        f"<sr:ServiceReferenceVariant>{entry['srv']}</sr:ServiceReferenceVariant>"
        "</sr:Header>"
        f"<sr:Body>{body_of(entry, future)}</sr:Body>"
        "</sr:Request>"
    )
    return {"xml": indented(xml), "role": role, "cv": cv, "service": SERVICE_FOR_CV[cv], "user": user,
            "target": target}


SR = "http://www.dccinterface.co.uk/ServiceUserGateway"
ET.register_namespace("sr", SR)


def indented(xml):
    """The document, one element a line, indented by depth (whitespace the schema ignores: the
    request elements have element-only content)."""
    root = ET.fromstring(xml)
    ET.indent(root, space="  ")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def validates(xml, xsd_dir):
    """xmllint's complaint about the request with a placeholder signature (the schema requires
    one), or None."""
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
        r = subprocess.run(["xmllint", "--noout", "--nonet", "--schema",
                            os.path.join(xsd_dir, "duis.xsd"), f.name],
                           capture_output=True, text=True)
        return None if r.returncode == 0 else r.stderr
    finally:
        os.unlink(f.name)


INDEX_HEAD = """# Example requests

Generated by `tools/gen_examples.py` from the catalogue (`schemas/catalogue.json`): a request
for every SRV a demo User may send ({count} SRVs), with a body of our own written from the DUIS
5.4 XSD, addressed from the demo Users to the demo devices (`dccgw demo`), and a few variants.
`docs/integrators.md` walks through a first exchange. Not here: {absent}.

Each file is unsigned, with a placeholder counter: sign it as the User its RequestID names
(`supplier`, `network-operator` or `other-user` under `certs/dev/users/`) with
`--stamp-counter`, and send it to the URL the table gives. From the repository root, with
`cargo run --release -- demo` running (`dccgw` is `target/release/dccgw`):

```sh
dccgw sign --stamp-counter --key certs/dev/users/supplier/xml-sign.key.pem \\
  --cert certs/dev/users/supplier/xml-sign.pem examples/requests/4.1.1.xml \\
  | curl -s --cacert certs/dev/ca.pem --cert certs/dev/users/supplier/client.pem \\
    -H 'Content-Type: application/xml' --data-binary @- https://127.0.0.1:8443/api/v1/serviceS
```

The answer is `I99`; the meter's Service Response (`I0`) reaches the demo's Receive Response
Service a moment later and is written to `demo-data/received/`.

**Critical requests (CV4 → CV5).** A file with CV 4 goes to `serviceT`; its `I0` answer carries
the pre-command, which `dccgw sign-precommand` signs with the User's Digital Signing key and
turns into the Command Variant 5 request (`--command-variant 6` or `7` for local delivery):

```sh
dccgw sign --stamp-counter --key certs/dev/users/supplier/xml-sign.key.pem \\
  --cert certs/dev/users/supplier/xml-sign.pem examples/requests/7.1.xml \\
  | curl -s --cacert certs/dev/ca.pem --cert certs/dev/users/supplier/client.pem \\
    -H 'Content-Type: application/xml' --data-binary @- https://127.0.0.1:8443/api/v1/serviceT \\
    > transform-response.xml
dccgw sign-precommand --key certs/dev/users/supplier/digital-signing.key.pem \\
  --cert certs/dev/users/supplier/digital-signing.pem \\
  --xml-key certs/dev/users/supplier/xml-sign.key.pem --xml-cert certs/dev/users/supplier/xml-sign.pem \\
  transform-response.xml \\
  | curl -s --cacert certs/dev/ca.pem --cert certs/dev/users/supplier/client.pem \\
    -H 'Content-Type: application/xml' --data-binary @- https://127.0.0.1:8443/api/v1/serviceS
```

**The DCC's own services (CV8)** go to `serviceD` and are answered at once (`I0` with the data),
except firmware distribution (11.1, 11.4: `I99`, then the Service Response):

```sh
dccgw sign --stamp-counter --key certs/dev/users/supplier/xml-sign.key.pem \\
  --cert certs/dev/users/supplier/xml-sign.pem examples/requests/8.2.xml \\
  | curl -s --cacert certs/dev/ca.pem --cert certs/dev/users/supplier/client.pem \\
    -H 'Content-Type: application/xml' --data-binary @- https://127.0.0.1:8443/api/v1/serviceD
```

**Future-dated requests** carry an `ExecutionDateTime` ({later} here, a placeholder): set it to
a time ahead (at most `[dsp] max_hold_secs` ahead for the ones the DSP holds) before signing,
e.g. a minute from now:

```sh
sed "s/{later}/$(date -u -d '+1 minute' +%Y-%m-%dT%H:%M:%SZ)/" examples/requests/4.1.1-future.xml \\
  | dccgw sign --stamp-counter --key certs/dev/users/supplier/xml-sign.key.pem \\
    --cert certs/dev/users/supplier/xml-sign.pem \\
  | curl -s --cacert certs/dev/ca.pem --cert certs/dev/users/supplier/client.pem \\
    -H 'Content-Type: application/xml' --data-binary @- https://127.0.0.1:8443/api/v1/serviceS
```

The DSP holds 4.1.1-future until then and sends it; the Service Response follows. 1.6-future is
critical: the device holds the signed command and reports the outcome at that time.

Other Command Variants of an SRV carry the same body: change `CommandVariant` (and the URL)
as `docs/integrators.md` says (4.1.1-cv2 and 4.1.1-cv3 are examples). Some of the DCC's own
services depend on earlier ones or change the demo's data, as the notes say: a 5.3 names the
schedule its 5.1 created; an 8.13 reports a device's answer to a command returned for local
delivery (`docs/integrators.md`, "Local delivery and 8.13"); 12.2, 8.14.2, 8.14.1 and 8.14.4
bring in, install and return a new comms hub ({new_hub}) in that order; 8.14.3 and 8.3 return
the demo's comms hub and decommission its meter (to start afresh, stop the demo, remove
`demo-data/` and start it again).

| file | SRV | name | CV | URL | User (role) | target | note |
|---|---|---|---|---|---|---|---|
"""


def main():
    args = sys.argv[1:]
    xsd_dir = args[args.index("--check-xsd") + 1] if "--check-xsd" in args else None
    catalogue = json.load(open("schemas/catalogue.json"))["services"]
    by_srv = {e["srv"]: e for e in catalogue}
    out = args[args.index("--out") + 1] if "--out" in args else "examples/requests"
    os.makedirs(out, exist_ok=True)
    for old in os.listdir(out):
        if old.endswith(".xml"):
            os.unlink(os.path.join(out, old))
    rows, absent = [], []
    jobs = [(e, None, None, False, None) for e in catalogue]
    jobs += [(by_srv[s], suffix, cv, future, note) for s, suffix, cv, future, note in VARIANTS]
    for entry, suffix, cv, future, note in jobs:
        made = request(entry, cv, future)
        if made is None:
            absent.append(entry)
            continue
        name = f"{entry['srv']}-{suffix}.xml" if suffix else f"{entry['srv']}.xml"
        if xsd_dir:
            problem = validates(made["xml"], xsd_dir)
            if problem:
                sys.exit(f"{name} does not validate:\n{problem}")
        with open(os.path.join(out, name), "w") as f:
            f.write(made["xml"])
        rows.append((entry, made, name, note or NOTES.get(entry["srv"], "")))
    absent_text = ", ".join(
        f"{e['srv']} ({'no role may send it' if not e['roles'] else 'only ' + '/'.join(e['roles']) + ', a role no demo User holds'})"
        for e in absent)
    with open(os.path.join(out, "README.md"), "w") as f:
        count = len({e["srv"] for e, *_ in rows})
        f.write(INDEX_HEAD.format(count=count, absent=absent_text, later=LATER, new_hub=NEW_HUB))
        for entry, made, name, note in rows:
            user = USERS[made["user"]][0]
            f.write(f"| [{name}]({name}) | {entry['srv']} | {entry['name']} | {made['cv']} | "
                    f"`/api/v1/{made['service']}` | {user} ({made['role']}) | `{made['target']}` | {note} |\n")
    print(f"{len(rows)} examples for {count} SRVs written; none for {len(absent)}", file=sys.stderr)


if __name__ == "__main__":
    main()
