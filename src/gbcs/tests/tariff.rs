//! ECS01a (SRV 1.1.1) against the public samples, field by field: the pre-command built from the
//! DUIS request templates' fields, the command around it, the device's response and the six
//! future-dated activation alerts.

use time::macros::datetime;

use super::frames::sample;
use super::{assert_same_request, frame_with_signature_of, mac_wrapped_like, METER, SUPPLIER};
use crate::gbcs::dlms::{AccessResponse, DataNotification, DlmsDate};
use crate::gbcs::usecase::tariff::*;
use crate::gbcs::usecase::{alert, alert_frame, command_frame, response_frame};
use crate::gbcs::usecase::{Execution, Parties};
use crate::gbcs::{Apdu, DlmsDateTime, SignatureField};
use crate::testing::anchors;

const MAX: u32 = u32::MAX;
const ANY: u8 = DlmsDate::NOT_SPECIFIED;

fn switch(hour: u8, action: TariffAction) -> Switch {
    Switch {
        start: [hour, 0, 0, 0],
        action,
    }
}

fn weeks_and_seasons() -> (Vec<WeekProfile>, Vec<Season>) {
    let weeks = vec![
        WeekProfile {
            week: 1,
            days: [1, 1, 1, 1, 1, 3, 3],
        },
        WeekProfile {
            week: 2,
            days: [2, 2, 2, 2, 2, 3, 3],
        },
    ];
    let seasons = vec![
        Season {
            name: "winter".into(),
            start: DlmsDate::new(Some(2014), 10, 27, ANY),
            week: 1,
        },
        Season {
            name: "summer".into(),
            start: DlmsDate::new(Some(2015), 3, 29, ANY),
            week: 2,
        },
    ];
    (weeks, seasons)
}

fn special_days(may_day: u8) -> Vec<SpecialDay> {
    vec![
        SpecialDay {
            date: DlmsDate::new(Some(2015), 5, 1, ANY),
            day: may_day,
        },
        SpecialDay {
            date: DlmsDate::new(None, 12, 25, ANY),
            day: 3,
        },
    ]
}

/// `ECS01a_1.1.1_IMMEDIATE_TOU_SUCCESS_REQUEST_DUIS.XML`.
fn tou() -> ImportTariff {
    use TariffAction::Tou;
    let (week_profiles, seasons) = weeks_and_seasons();
    ImportTariff {
        execution: Execution::Now,
        currency: Currency::Gbp,
        day_profiles: vec![
            DayProfile {
                day: 1,
                schedule: vec![switch(0, Tou(2)), switch(7, Tou(3))],
            },
            DayProfile {
                day: 2,
                schedule: vec![switch(6, Tou(3)), switch(23, Tou(2))],
            },
            DayProfile {
                day: 3,
                schedule: vec![switch(0, Tou(1))],
            },
        ],
        week_profiles,
        seasons,
        special_days: special_days(2),
        thresholds: std::array::from_fn(|_| vec![MAX]),
        standing_charge: 20000,
        standing_charge_scale: -5,
        price_scale: -5,
        tou_prices: vec![(1, 2121), (2, 3127), (3, 4744)],
        block_prices: vec![],
    }
}

/// `ECS01a_1.1.1_FUTURE_DATED_TOU_BLOCK_SUCCESS_REQUEST_DUIS.XML`: a hybrid tariff.
fn tou_block(execution: Execution) -> ImportTariff {
    use TariffAction::{Block, Tou};
    let mut thresholds: [Vec<u32>; 8] = std::array::from_fn(|_| vec![MAX]);
    thresholds[0] = vec![10000, MAX];
    thresholds[1] = vec![40000, MAX];
    let price = |tariff, block, price| BlockPrice {
        tariff,
        block,
        price,
    };
    ImportTariff {
        execution,
        day_profiles: vec![
            DayProfile {
                day: 1,
                schedule: vec![switch(0, Block(2)), switch(7, Block(1))],
            },
            DayProfile {
                day: 2,
                schedule: vec![switch(6, Block(1)), switch(23, Block(2))],
            },
            DayProfile {
                day: 3,
                schedule: vec![switch(0, Tou(1))],
            },
        ],
        special_days: special_days(1),
        thresholds,
        tou_prices: vec![(1, 2121)],
        block_prices: vec![
            price(1, 1, 2289),
            price(1, 2, 3546),
            price(2, 1, 4002),
            price(2, 2, 6969),
        ],
        ..tou()
    }
}

/// A block tariff with one season, one week and one day (the IMMEDIATE_BLOCK sample).
fn block() -> ImportTariff {
    let mut thresholds: [Vec<u32>; 8] = std::array::from_fn(|_| vec![MAX]);
    thresholds[0] = vec![10000, 20000, MAX];
    ImportTariff {
        day_profiles: vec![DayProfile {
            day: 1,
            schedule: vec![switch(0, TariffAction::Block(1))],
        }],
        week_profiles: vec![WeekProfile {
            week: 1,
            days: [1; 7],
        }],
        seasons: vec![Season {
            name: "all".into(),
            start: DlmsDate::new(Some(2015), 1, 1, ANY),
            week: 1,
        }],
        special_days: vec![],
        thresholds,
        tou_prices: vec![],
        block_prices: [1361, 2289, 5566]
            .into_iter()
            .zip(1..)
            .map(|(price, block)| BlockPrice {
                tariff: 1,
                block,
                price,
            })
            .collect(),
        ..tou()
    }
}

const FUTURE: time::OffsetDateTime = datetime!(2030-01-15 09:00:00 UTC);

fn cases() -> Vec<(&'static str, u64, ImportTariff)> {
    vec![
        ("IMMEDIATE_TOU_SUCCESS", 1006, tou()),
        ("IMMEDIATE_ERROR", 1012, tou()),
        ("IMMEDIATE_BLOCK_SUCCESS", 1007, block()),
        (
            "FUTURE_DATED_TOU_BLOCK_SUCCESS",
            1008,
            tou_block(Execution::At(FUTURE)),
        ),
        (
            "CANCELLATION_TOU_BLOCK_SUCCESS",
            1009,
            tou_block(Execution::Cancel),
        ),
    ]
}

#[test]
fn the_pre_commands_and_commands_are_built_from_the_request_fields() {
    let Some(anchors) = anchors() else { return };
    for (case, counter, tariff) in cases() {
        let name = format!("ECS01a_1.1.1_{case}_PRECOMMAND_GBCS.HEX");
        let Apdu::Signing(expected) = sample(&anchors, &name) else {
            panic!("{name}: not a bare pre-command")
        };
        let parties = Parties {
            user: SUPPLIER,
            device: METER,
            counter,
        };
        let content = tariff.content(counter).unwrap();
        assert_same_request(&content, &expected.content, &name);
        let ours = command_frame(&parties, MESSAGE_CODE, content, true);
        assert_eq!(ours, expected, "{name}");

        let command = name.replace("_PRECOMMAND_", "_COMMAND_");
        let signed = frame_with_signature_of(ours, &sample(&anchors, &command));
        assert_eq!(
            mac_wrapped_like(signed, &sample(&anchors, &command)),
            sample(&anchors, &command),
            "{command}"
        );
    }
}

#[test]
fn the_responses_are_the_devices_answers() {
    let Some(anchors) = anchors() else { return };
    for (case, counter, _) in cases() {
        let name = format!("ECS01a_1.1.1_{case}_RESPONSE_GBCS.HEX");
        let expected = sample(&anchors, &name);
        let mut results = [0u8; ATTRIBUTES];
        if case == "IMMEDIATE_ERROR" {
            // The last two activations (price matrix, block thresholds) failed: hardware fault
            // and other reason.
            results[ATTRIBUTES - 2] = 1;
            results[ATTRIBUTES - 1] = 0xFA;
        }
        let content = response_content(counter, &results);
        assert_eq!(
            AccessResponse::decode(&content).unwrap(),
            AccessResponse::decode(&expected.general_signing().content).unwrap(),
            "{name}"
        );
        let parties = Parties {
            user: SUPPLIER,
            device: METER,
            counter,
        };
        let at = DlmsDateTime::from_utc(datetime!(2015-01-01 00:00:00 UTC));
        let ours = response_frame(&parties, MESSAGE_CODE, Some(at), content);
        assert_eq!(
            Apdu::Signing(frame_with_signature_of(ours, &expected)),
            expected,
            "{name}"
        );
    }
}

#[test]
fn a_future_dated_tariff_reports_each_activation_in_an_alert() {
    let Some(anchors) = anchors() else { return };
    let names = [
        "SWITCHING_TABLE",
        "SPECIAL_DAYS",
        "CURRENCY_UNIT",
        "STANDING_CHARGE",
        "PRICE_MATRIX",
        "THRESHOLD_MATRIX",
    ];
    for ((name, activated), alert_counter) in names.iter().zip(ACTIVATIONS).zip(2012..) {
        let file =
            format!("ECS01a_1.1.1_8F66_FUTURE_DATED_TOU_BLOCK_SUCCESS_ALERT_{name}_GBCS.HEX");
        let expected = sample(&anchors, &file);
        let content = alert::future_dated_dlms(
            alert_counter,
            alert::FUTURE_DATED_SUCCESS,
            FUTURE,
            MESSAGE_CODE,
            1008,
            activated,
        );
        assert_eq!(
            DataNotification::decode(&content).unwrap(),
            DataNotification::decode(&expected.general_signing().content).unwrap(),
            "{file}"
        );
        let ours = alert_frame(
            METER,
            SUPPLIER,
            alert_counter,
            alert::FUTURE_DATED_DLMS,
            content,
        );
        assert!(matches!(
            expected.general_signing().signature,
            SignatureField::Ecdsa(_)
        ));
        assert_eq!(
            Apdu::Signing(frame_with_signature_of(ours, &expected)),
            expected,
            "{file}"
        );
    }
}

#[test]
fn out_of_range_fields_are_refused() {
    let mut t = tou();
    t.tou_prices.push((49, 1));
    assert!(t.content(1).is_err());
    let mut t = tou();
    t.seasons[0].name = "a season!".into();
    assert!(t.content(1).is_err());
    let mut t = tou();
    t.day_profiles[0].schedule[0].action = TariffAction::Block(9);
    assert!(t.content(1).is_err());
    let mut t = tou();
    t.thresholds[0] = vec![1, 2, 3, 4];
    assert!(t.content(1).is_err());
}
