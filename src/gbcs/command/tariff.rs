//! ECS01a's input from the DUIS body `UpdateImportTariffPrimaryElement` with
//! `ElecTariffElements` (XSD `TariffPrimaryElement`, `ElecTariffElements`,
//! `ElecPriceElementsPrimary`): field for field what `usecase::tariff::ImportTariff` holds.
//! Indexed elements (`ReferencedDayName`, `Thresholds`, `BlockThreshold`, `BlockPrices`,
//! `BlockPrice`, `TOUPrice`) are placed by their `index` attribute; a time of day is read as
//! written (hours, minutes, seconds and hundredths; a zone designator is not applied).

use crate::duis::body::{BodyError, Node};
use crate::gbcs::dlms::DlmsDate;
use crate::gbcs::usecase::tariff::{
    BlockPrice, Currency, DayProfile, ImportTariff, Season, SpecialDay, Switch, TariffAction,
    WeekProfile,
};
use crate::gbcs::usecase::Execution;

/// The tariff a body asks for, or why its fields are not one.
pub fn from_duis(body: &Node, execution: Execution) -> Result<ImportTariff, BodyError> {
    let elec = body.need("ElecTariffElements")?;
    let currency = match elec.need("CurrencyUnits")?.text.as_str() {
        "GBP" => Currency::Gbp,
        "ECB" => Currency::Ecb,
        _ => return Err(BodyError::Invalid("CurrencyUnits")),
    };
    let table = elec.need("SwitchingTable")?;
    let prices = body
        .need("PriceElements")?
        .need("ElectricityPriceElements")?;
    let (tou_prices, block_prices) = tariff_prices(prices)?;
    Ok(ImportTariff {
        execution,
        currency,
        day_profiles: table
            .need("DayProfiles")?
            .all("DayProfile")
            .map(day_profile)
            .collect::<Result<_, _>>()?,
        week_profiles: table
            .need("WeekProfiles")?
            .all("WeekProfile")
            .map(week_profile)
            .collect::<Result<_, _>>()?,
        seasons: table
            .need("Seasons")?
            .all("Season")
            .map(season)
            .collect::<Result<_, _>>()?,
        special_days: elec
            .need("SpecialDays")?
            .all("SpecialDay")
            .map(|d| {
                Ok(SpecialDay {
                    date: date(d.need("Date")?)?,
                    day: d.value("ReferencedDayName")?,
                })
            })
            .collect::<Result<_, BodyError>>()?,
        thresholds: thresholds(elec.need("ThresholdMatrix")?)?,
        standing_charge: prices.value("StandingCharge")?,
        standing_charge_scale: prices.value("StandingChargeScale")?,
        price_scale: prices.value("PriceScale")?,
        tou_prices,
        block_prices,
    })
}

fn day_profile(d: &Node) -> Result<DayProfile, BodyError> {
    let schedule = d
        .all("ProfileSchedule")
        .map(|s| {
            let action = match (s.child("TOUTariffAction"), s.child("BlockTariffAction")) {
                (Some(t), None) => TariffAction::Tou(t.read("TOUTariffAction")?),
                (None, Some(b)) => TariffAction::Block(b.read("BlockTariffAction")?),
                _ => return Err(BodyError::Missing("TOUTariffAction")),
            };
            Ok(Switch {
                start: time_of_day(&s.need("StartTime")?.text)?,
                action,
            })
        })
        .collect::<Result<_, _>>()?;
    Ok(DayProfile {
        day: d.value("DayName")?,
        schedule,
    })
}

fn week_profile(w: &Node) -> Result<WeekProfile, BodyError> {
    let mut days = [0u8; 7];
    let mut seen = 0usize;
    for r in w.all("ReferencedDayName") {
        let slot = usize::try_from(r.need_index("ReferencedDayName index")?)
            .ok()
            .and_then(|i| i.checked_sub(1))
            .filter(|&i| i < 7)
            .ok_or(BodyError::Invalid("ReferencedDayName index"))?;
        days[slot] = r.read("ReferencedDayName")?;
        seen |= 1 << slot;
    }
    if seen != 0x7F {
        return Err(BodyError::Missing("ReferencedDayName"));
    }
    Ok(WeekProfile {
        week: w.value("WeekName")?,
        days,
    })
}

fn season(s: &Node) -> Result<Season, BodyError> {
    Ok(Season {
        name: s.need("SeasonName")?.text.clone(),
        start: date(s.need("SeasonStartDate")?)?,
        week: s.value("ReferencedWeekName")?,
    })
}

/// XSD `Date`: each part specified, or one of its named wildcards.
fn date(d: &Node) -> Result<DlmsDate, BodyError> {
    let any = DlmsDate::NOT_SPECIFIED;
    let year = d.need("Year")?.optional::<u16>("SpecifiedYear")?;
    let month = d
        .need("Month")?
        .optional::<u8>("SpecifiedMonth")?
        .unwrap_or(any);
    let dom = d.need("DayOfMonth")?;
    let day_of_month = match dom.optional::<u8>("SpecifiedDayOfMonth")? {
        Some(day) => day,
        None if dom.child("LastDayOfMonth").is_some() => DlmsDate::LAST_DAY_OF_MONTH,
        None if dom.child("SecondLastDayOfMonth").is_some() => DlmsDate::SECOND_LAST_DAY_OF_MONTH,
        None => any,
    };
    let day_of_week = d
        .need("DayOfWeek")?
        .optional::<u8>("SpecifiedDayOfWeek")?
        .unwrap_or(any);
    Ok(DlmsDate::new(year, month, day_of_month, day_of_week))
}

/// `hh:mm:ss[.ff…][zone]` as hours, minutes, seconds and hundredths.
fn time_of_day(text: &str) -> Result<[u8; 4], BodyError> {
    let bad = BodyError::Invalid("StartTime");
    let clock = text
        .trim_end_matches('Z')
        .split(['+', '-'])
        .next()
        .unwrap_or_default();
    let (hms, fraction) = clock.split_once('.').unwrap_or((clock, ""));
    let mut parts = hms.split(':').map(|p| p.parse::<u8>());
    let (Some(Ok(h)), Some(Ok(m)), Some(Ok(s)), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad);
    };
    let hundredths = format!("{fraction:0<2}")
        .get(..2)
        .and_then(|f| f.parse::<u8>().ok())
        .ok_or(bad.clone())?;
    if h > 23 || m > 59 || s > 59 {
        return Err(bad);
    }
    Ok([h, m, s, hundredths])
}

/// The eight block tariffs' thresholds, each in `index` order.
fn thresholds(matrix: &Node) -> Result<[Vec<u32>; 8], BodyError> {
    let mut out: [Vec<u32>; 8] = Default::default();
    for t in matrix.all("Thresholds") {
        let i = slot(t.need_index("Thresholds index")?, 8, "Thresholds index")?;
        let mut values: Vec<(u32, u32)> = t
            .all("BlockThreshold")
            .map(|b| {
                Ok((
                    b.need_index("BlockThreshold index")?,
                    b.read("BlockThreshold")?,
                ))
            })
            .collect::<Result<_, BodyError>>()?;
        values.sort_unstable_by_key(|(index, _)| *index);
        out[i] = values.into_iter().map(|(_, v)| v).collect();
    }
    Ok(out)
}

/// A tariff's TOU prices (`TOUPrice index`, price) and block prices.
type Prices = (Vec<(u8, i16)>, Vec<BlockPrice>);

/// The TOU prices and block prices of a TOU, block or hybrid tariff.
fn tariff_prices(prices: &Node) -> Result<Prices, BodyError> {
    let tariff = ["TOUTariff", "BlockTariff", "HybridTariff"]
        .into_iter()
        .find_map(|name| prices.child(name))
        .ok_or(BodyError::Missing("TOUTariff"))?;
    let tou = tariff
        .all("TOUPrice")
        .map(|p| {
            let index = slot(p.need_index("TOUPrice index")?, 48, "TOUPrice index")? + 1;
            Ok((index as u8, p.read("TOUPrice")?))
        })
        .collect::<Result<_, BodyError>>()?;
    let mut blocks = Vec::new();
    for b in tariff.all("BlockPrices") {
        let t = slot(b.need_index("BlockPrices index")?, 8, "BlockPrices index")? + 1;
        for p in b.all("BlockPrice") {
            let block = slot(p.need_index("BlockPrice index")?, 4, "BlockPrice index")? + 1;
            blocks.push(BlockPrice {
                tariff: t as u8,
                block: block as u8,
                price: p.read("BlockPrice")?,
            });
        }
    }
    Ok((tou, blocks))
}

/// A 1-based `index` up to `max`, as a 0-based slot.
fn slot(index: u32, max: u32, what: &'static str) -> Result<usize, BodyError> {
    if index == 0 || index > max {
        return Err(BodyError::Invalid(what));
    }
    Ok(index as usize - 1)
}
