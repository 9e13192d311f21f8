//! ECS01a, Set Tariff and Price on ESME (SRV 1.1.1 Update Import Tariff, primary element): the
//! DLMS access request that sets the passive switching table, special days, block thresholds,
//! currency, standing charge and price matrix, then each one's activation date-time; the
//! device's access response; and the six 8F66/8F67 alerts that report each activation of a
//! future-dated tariff.
//!
//! The attributes, their order and every value's DLMS type are those of the public samples; the
//! DUIS → DLMS mapping of each field is read from them (ECS01a samples and the DUIS request
//! templates of the same test data set). Two constants come from the samples alone: the price
//! matrix's commodity scale (3) and the currency flag's encoding (GBP is `true`; `ECB`, which no
//! sample shows, is written `false`).

use super::{check_count, check_range, ContentError, Execution};
use crate::gbcs::dlms::{invoke_id, AccessRequest, AccessResponse, CosemRef, Data, DlmsDate};
use crate::gbcs::dlms::{RequestSpec, ResponseSpec};
use crate::gbcs::frame::{DlmsDateTime, MessageCode};

/// ECS01a's message code.
pub const MESSAGE_CODE: MessageCode = MessageCode(0x0019);

const CALENDAR: [u8; 6] = [0, 0, 13, 0, 0, 255];
const SPECIAL_DAYS: [u8; 6] = [0, 1, 11, 0, 0, 255];
const CURRENCY: [u8; 6] = [0, 0, 94, 44, 2, 0];
const SPECIAL_DAYS_ACTIVATION: [u8; 6] = [0, 0, 94, 44, 128, 29];
const STANDING_CHARGE: [u8; 6] = [0, 0, 19, 20, 4, 255];
const PRICE_MATRIX: [u8; 6] = [0, 0, 19, 20, 0, 255];
const THRESHOLD_ACTIVATION: [u8; 6] = [0, 0, 63, 1, 1, 255];
/// The tariff script table the day profiles' actions run.
const TARIFF_SCRIPTS: [u8; 6] = [0, 0, 10, 0, 100, 255];
/// The register the price matrix prices: active energy import.
const ACTIVE_IMPORT: [u8; 6] = [1, 0, 1, 8, 0, 255];

const CLASS_CALENDAR: u16 = 20;
const CLASS_SPECIAL_DAYS: u16 = 11;
const CLASS_REGISTER_MONITOR: u16 = 21;
const CLASS_GBCS_EXTENSION: u16 = 9000;
const CLASS_CHARGE: u16 = 113;

/// What each activation date-time activates, in the order the command sets them and the
/// future-dated alerts report them: switching table, special days, currency, standing charge,
/// price matrix, block thresholds.
pub const ACTIVATIONS: [CosemRef; 6] = [
    CosemRef::new(CLASS_CALENDAR, CALENDAR, 10),
    CosemRef::new(CLASS_GBCS_EXTENSION, SPECIAL_DAYS_ACTIVATION, 6),
    CosemRef::new(CLASS_GBCS_EXTENSION, CURRENCY, 6),
    CosemRef::new(CLASS_CHARGE, STANDING_CHARGE, 7),
    CosemRef::new(CLASS_CHARGE, PRICE_MATRIX, 7),
    CosemRef::new(CLASS_GBCS_EXTENSION, THRESHOLD_ACTIVATION, 6),
];

/// How many attributes the command sets (and so how many results its response holds).
pub const ATTRIBUTES: usize = 21;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Currency {
    Gbp,
    /// DUIS `ECB` (euro).
    Ecb,
}

/// A tariff switch's action: a TOU register (1–48) or a block tariff (1–8).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TariffAction {
    Tou(u8),
    Block(u8),
}

/// A switch in a day profile: the time of day (hour, minute, second, hundredths) and the action.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Switch {
    pub start: [u8; 4],
    pub action: TariffAction,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DayProfile {
    /// `DayName`, 1–16.
    pub day: u8,
    pub schedule: Vec<Switch>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WeekProfile {
    /// `WeekName`, 1–4.
    pub week: u8,
    /// The day profile of Monday … Sunday.
    pub days: [u8; 7],
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Season {
    /// `SeasonName`, up to 8 characters.
    pub name: String,
    pub start: DlmsDate,
    pub week: u8,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpecialDay {
    pub date: DlmsDate,
    pub day: u8,
}

/// A block price: `BlockPrices index` (the block tariff, 1–8), `BlockPrice index` (the block,
/// 1–4) and the price.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockPrice {
    pub tariff: u8,
    pub block: u8,
    pub price: i16,
}

/// The body of an Update Import Tariff (Primary Element) request for an electricity meter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportTariff {
    pub execution: Execution,
    pub currency: Currency,
    pub day_profiles: Vec<DayProfile>,
    pub week_profiles: Vec<WeekProfile>,
    pub seasons: Vec<Season>,
    pub special_days: Vec<SpecialDay>,
    /// `ThresholdMatrix`: for each of the 8 block tariffs, its 1–3 block thresholds.
    pub thresholds: [Vec<u32>; 8],
    pub standing_charge: i16,
    pub standing_charge_scale: i8,
    pub price_scale: i8,
    /// `TOUPrice index` (1–48) and price; TOU registers not named are priced 0.
    pub tou_prices: Vec<(u8, i16)>,
    /// Block prices; blocks not named are priced 0.
    pub block_prices: Vec<BlockPrice>,
}

impl ImportTariff {
    /// The command's content for the request with originator counter `counter`.
    pub fn content(&self, counter: u64) -> Result<Vec<u8>, ContentError> {
        self.check()?;
        let thresholds = (0..8u8).map(|i| {
            RequestSpec::Set(CosemRef::new(
                CLASS_REGISTER_MONITOR,
                [0, 0, 16, 1, 11 + i, 255],
                2,
            ))
        });
        let mut specs = vec![
            RequestSpec::Set(CosemRef::new(CLASS_CALENDAR, CALENDAR, 7)),
            RequestSpec::Set(CosemRef::new(CLASS_CALENDAR, CALENDAR, 8)),
            RequestSpec::Set(CosemRef::new(CLASS_CALENDAR, CALENDAR, 9)),
            RequestSpec::Set(CosemRef::new(CLASS_SPECIAL_DAYS, SPECIAL_DAYS, 2)),
        ];
        specs.extend(thresholds);
        specs.extend([
            RequestSpec::Set(CosemRef::new(CLASS_GBCS_EXTENSION, CURRENCY, 4)),
            RequestSpec::Set(CosemRef::new(CLASS_CHARGE, STANDING_CHARGE, 6)),
            RequestSpec::Set(CosemRef::new(CLASS_CHARGE, PRICE_MATRIX, 6)),
        ]);
        specs.extend(ACTIVATIONS.iter().map(|a| RequestSpec::Set(*a)));

        let mut data = vec![
            self.season_profiles(),
            self.week_profiles(),
            self.day_profiles(),
            self.special_days_table(),
        ];
        data.extend(
            self.thresholds
                .iter()
                .map(|t| Data::Array(t.iter().map(|v| Data::DoubleLongUnsigned(*v)).collect())),
        );
        data.push(Data::Boolean(self.currency == Currency::Gbp));
        data.push(self.standing_charge_table());
        data.push(self.price_matrix());
        let activation = Data::OctetString(self.execution.activation().0.to_vec());
        data.extend(std::iter::repeat_n(activation, ACTIVATIONS.len()));
        debug_assert_eq!((specs.len(), data.len()), (ATTRIBUTES, ATTRIBUTES));
        Ok(AccessRequest {
            invoke_id: invoke_id(counter),
            specs,
            data,
        }
        .encode())
    }

    fn check(&self) -> Result<(), ContentError> {
        check_count("DayProfile", self.day_profiles.len(), 16)?;
        check_count("WeekProfile", self.week_profiles.len(), 4)?;
        check_count("Season", self.seasons.len(), 4)?;
        check_count("SpecialDay", self.special_days.len(), 50)?;
        for day in &self.day_profiles {
            check_count("ProfileSchedule", day.schedule.len(), 48)?;
            for switch in &day.schedule {
                match switch.action {
                    TariffAction::Tou(n) => check_range("TOUTariffAction", n.into(), 1..=48)?,
                    TariffAction::Block(n) => check_range("BlockTariffAction", n.into(), 1..=8)?,
                }
            }
        }
        for season in &self.seasons {
            check_count("SeasonName", season.name.len(), 8)?;
        }
        for t in &self.thresholds {
            check_count("BlockThreshold", t.len(), 3)?;
        }
        for (index, _) in &self.tou_prices {
            check_range("TOUPrice index", (*index).into(), 1..=48)?;
        }
        for b in &self.block_prices {
            check_range("BlockPrices index", b.tariff.into(), 1..=8)?;
            check_range("BlockPrice index", b.block.into(), 1..=4)?;
        }
        Ok(())
    }

    fn season_profiles(&self) -> Data {
        Data::Array(
            self.seasons
                .iter()
                .map(|s| {
                    Data::Structure(vec![
                        Data::OctetString(s.name.as_bytes().to_vec()),
                        Data::OctetString(DlmsDateTime::midnight_of(s.start).0.to_vec()),
                        Data::OctetString(vec![s.week]),
                    ])
                })
                .collect(),
        )
    }

    fn week_profiles(&self) -> Data {
        Data::Array(
            self.week_profiles
                .iter()
                .map(|w| {
                    let mut items = vec![Data::OctetString(vec![w.week])];
                    items.extend(w.days.iter().map(|d| Data::Unsigned(*d)));
                    Data::Structure(items)
                })
                .collect(),
        )
    }

    fn day_profiles(&self) -> Data {
        let switch = |s: &Switch| {
            let script = match s.action {
                TariffAction::Tou(n) => u16::from(n),
                TariffAction::Block(n) => 100 + u16::from(n),
            };
            Data::Structure(vec![
                Data::OctetString(s.start.to_vec()),
                Data::OctetString(TARIFF_SCRIPTS.to_vec()),
                Data::LongUnsigned(script),
            ])
        };
        Data::Array(
            self.day_profiles
                .iter()
                .map(|d| {
                    Data::Structure(vec![
                        Data::Unsigned(d.day),
                        Data::Array(d.schedule.iter().map(switch).collect()),
                    ])
                })
                .collect(),
        )
    }

    fn special_days_table(&self) -> Data {
        Data::Array(
            (1u16..)
                .zip(&self.special_days)
                .map(|(index, s)| {
                    Data::Structure(vec![
                        Data::LongUnsigned(index),
                        Data::OctetString(s.date.0.to_vec()),
                        Data::Unsigned(s.day),
                    ])
                })
                .collect(),
        )
    }

    fn standing_charge_table(&self) -> Data {
        charge(
            0,
            self.standing_charge_scale,
            (0, [0; 6], 0),
            vec![(Vec::new(), self.standing_charge)],
        )
    }

    /// The 80 prices: TOU registers 1–48 (keys `0x01`–`0x30`), then block `b` (1–4) of block
    /// tariff `t` (1–8) under key `0xA0 + 0x10 (b − 1) + t`.
    fn price_matrix(&self) -> Data {
        let tou = (1..=48u8).map(|i| {
            let price = self.tou_prices.iter().find(|(n, _)| *n == i);
            (vec![i], price.map_or(0, |(_, p)| *p))
        });
        let blocks = (1..=4u8).flat_map(|block| {
            (1..=8u8).map(move |tariff| {
                let price = self
                    .block_prices
                    .iter()
                    .find(|b| (b.tariff, b.block) == (tariff, block));
                (
                    vec![0xA0 + 0x10 * (block - 1) + tariff],
                    price.map_or(0, |b| b.price),
                )
            })
        });
        charge(
            3,
            self.price_scale,
            (3, ACTIVE_IMPORT, 2),
            tou.chain(blocks).collect(),
        )
    }
}

/// A charge's passive unit charge: scalers, the commodity it prices, and its charge table.
fn charge(
    commodity_scale: i8,
    price_scale: i8,
    (class, obis, attribute): (u16, [u8; 6], i8),
    table: Vec<(Vec<u8>, i16)>,
) -> Data {
    Data::Structure(vec![
        Data::Structure(vec![
            Data::Integer(commodity_scale),
            Data::Integer(price_scale),
        ]),
        Data::Structure(vec![
            Data::LongUnsigned(class),
            Data::OctetString(obis.to_vec()),
            Data::Integer(attribute),
        ]),
        Data::Array(
            table
                .into_iter()
                .map(|(index, price)| {
                    Data::Structure(vec![Data::OctetString(index), Data::Long(price)])
                })
                .collect(),
        ),
    ])
}

/// The device's response: no data, one data-access-result per attribute set (0 success).
pub fn response_content(counter: u64, results: &[u8; ATTRIBUTES]) -> Vec<u8> {
    AccessResponse {
        invoke_id: invoke_id(counter),
        data: vec![Data::Null; ATTRIBUTES],
        results: results.iter().map(|r| ResponseSpec::Set(*r)).collect(),
    }
    .encode()
}
