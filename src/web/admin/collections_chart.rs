//! The dashboard's chart of money collected per month, one stacked bar per month and one
//! segment per gateway: geometry computed here (integers, tenths of a pixel), drawn as SVG by
//! `templates/admin/collections_chart.html`, which escapes every label. Each gateway has a
//! colour of a colour-blind-safe palette and a hatching, so that a black and white print
//! still tells them apart.

use std::collections::BTreeMap;

use crate::books::Collected;
use crate::domain::Money;

const WIDTH: i64 = 720;
const PLOT_LEFT: i64 = 72;
const PLOT_RIGHT: i64 = 708;
const PLOT_TOP: i64 = 12;
const PLOT_BOTTOM: i64 = 232;
const LEGEND_Y: i64 = 268;
const LEGEND_ROW: i64 = 20;
const TICKS: i64 = 4;

/// Okabe–Ito colours and hatching angles (none for the first gateway).
const PALETTE: [(&str, Option<i64>); 8] = [
    ("#0072b2", None),
    ("#e69f00", Some(45)),
    ("#009e73", Some(135)),
    ("#cc79a7", Some(0)),
    ("#56b4e9", Some(90)),
    ("#d55e00", Some(45)),
    ("#f0e442", Some(135)),
    ("#555555", Some(0)),
];

/// The months' abbreviated names, in the reader's language.
const MONTHS: [&str; 12] = [
    "collections.m01",
    "collections.m02",
    "collections.m03",
    "collections.m04",
    "collections.m05",
    "collections.m06",
    "collections.m07",
    "collections.m08",
    "collections.m09",
    "collections.m10",
    "collections.m11",
    "collections.m12",
];

/// A round amount without its cents: `40 €` (`€40` in English).
fn whole_euros(amount: Money) -> String {
    let text = amount.to_string();
    match text.strip_suffix(".00") {
        Some(english) => english.to_string(),
        None => text.replace(",00 €", " €"),
    }
}

/// Tenths of a pixel as SVG writes them: `12.3`.
fn px(tenths: i64) -> String {
    format!("{}.{}", tenths / 10, tenths % 10)
}

/// `2026-03` as `mars 2026` (`Mar 2026` in English).
pub fn month_name(month: &str) -> String {
    let name = month
        .get(5..7)
        .and_then(|m| m.parse::<usize>().ok())
        .and_then(|m| MONTHS.get(m.wrapping_sub(1)))
        .map_or("", |key| crate::i18n::current().t(key));
    format!("{name} {}", month.get(0..4).unwrap_or(""))
}

/// The twelve months (`YYYY-MM`) that end with the month of `today` (`YYYY-MM-DD`), oldest
/// first.
pub fn last_twelve_months(today: &str) -> Vec<String> {
    let year: i64 = today.get(0..4).and_then(|y| y.parse().ok()).unwrap_or(2000);
    let month: i64 = today.get(5..7).and_then(|m| m.parse().ok()).unwrap_or(1);
    let last = year * 12 + (month - 1);
    (last - 11..=last)
        .map(|m| format!("{:04}-{:02}", m / 12, m % 12 + 1))
        .collect()
}

pub struct SeriesView {
    pub gateway: String,
    pub name: String,
    pub colour: &'static str,
    /// Angle of the hatching lines, when the gateway has some.
    pub hatch: Option<i64>,
    pub legend_x: String,
    pub legend_box_y: String,
    pub legend_text_x: String,
    pub legend_y: String,
    pub total: String,
}

pub struct BarView {
    pub series: usize,
    pub month: String,
    pub gateway: String,
    pub cents: i64,
    pub x: String,
    pub y: String,
    pub width: String,
    pub height: String,
    /// What a pointer over the segment (or a screen reader) is told.
    pub title: String,
}

pub struct TickView {
    pub y: String,
    pub label_y: String,
    pub label: String,
}

pub struct MonthView {
    pub month: String,
    pub name: String,
    /// Abbreviated under the bar: `mars 26`.
    pub short: String,
    pub label_x: String,
    /// One amount per series (empty when nothing), then the month's total.
    pub amounts: Vec<String>,
    pub total: String,
}

pub struct CollectionsChart {
    pub width: i64,
    pub height: i64,
    pub plot_left: i64,
    pub plot_right: i64,
    pub plot_bottom: i64,
    pub legend_y: i64,
    pub series: Vec<SeriesView>,
    pub bars: Vec<BarView>,
    pub ticks: Vec<TickView>,
    pub months: Vec<MonthView>,
    pub first_month: String,
    pub last_month: String,
    pub total: String,
    pub is_empty: bool,
}

/// A round top for the axis: 1, 2 or 5 times a power of ten euros per tick.
fn tick_step(max_cents: i64) -> i64 {
    let mut unit = 100; // 1 €
    loop {
        for factor in [1, 2, 5] {
            let step = unit * factor;
            if step * TICKS >= max_cents {
                return step;
            }
        }
        unit *= 10;
    }
}

/// Lays the chart out. `names` gives each gateway's display name (its id otherwise).
pub fn build(
    months: &[String],
    collected: &[Collected],
    names: &BTreeMap<String, String>,
) -> CollectionsChart {
    let in_range: Vec<&Collected> = collected
        .iter()
        .filter(|c| months.contains(&c.month) && c.amount.is_positive())
        .collect();
    let mut gateways: Vec<String> = in_range.iter().map(|c| c.gateway.clone()).collect();
    gateways.sort();
    gateways.dedup();
    let amount = |month: &str, gateway: &str| -> i64 {
        in_range
            .iter()
            .filter(|c| c.month == month && c.gateway == gateway)
            .map(|c| c.amount.cents())
            .sum()
    };
    let month_totals: Vec<i64> = months
        .iter()
        .map(|m| gateways.iter().map(|g| amount(m, g)).sum())
        .collect();
    let max = month_totals.iter().copied().max().unwrap_or(0);
    let step = tick_step(max);
    let top = step * TICKS;
    let plot_height = (PLOT_BOTTOM - PLOT_TOP) * 10;
    // Tenths of a pixel for an amount, rounded, exact for the whole stack.
    let scale = |cents: i64| -> i64 {
        i64::try_from(i128::from(cents) * i128::from(plot_height) / i128::from(top.max(1)))
            .unwrap_or(plot_height)
    };
    let slot = (PLOT_RIGHT - PLOT_LEFT) * 10 / i64::try_from(months.len().max(1)).unwrap_or(1);
    let bar_width = slot * 6 / 10;

    let mut bars = Vec::new();
    let mut month_views = Vec::new();
    for (i, month) in months.iter().enumerate() {
        let index = i64::try_from(i).unwrap_or(0);
        let x = PLOT_LEFT * 10 + index * slot + (slot - bar_width) / 2;
        let mut below = 0i64;
        let mut amounts = Vec::new();
        for (s, gateway) in gateways.iter().enumerate() {
            let cents = amount(month, gateway);
            amounts.push(if cents > 0 {
                Money::from_cents(cents).to_string()
            } else {
                String::new()
            });
            if cents == 0 {
                continue;
            }
            let start = scale(below);
            below += cents;
            let end = scale(below);
            let name = names.get(gateway).unwrap_or(gateway);
            bars.push(BarView {
                series: s,
                month: month.clone(),
                gateway: gateway.clone(),
                cents,
                x: px(x),
                y: px(PLOT_BOTTOM * 10 - end),
                width: px(bar_width),
                height: px((end - start).max(1)),
                title: crate::i18n::current().tf(
                    "collections.bar_title",
                    &[
                        ("gateway", name),
                        ("month", &month_name(month)),
                        ("amount", &Money::from_cents(cents).to_string()),
                    ],
                ),
            });
        }
        let name = month_name(month);
        month_views.push(MonthView {
            month: month.clone(),
            short: format!(
                "{} {}",
                name.split(' ').next().unwrap_or(""),
                month.get(2..4).unwrap_or("")
            ),
            name,
            label_x: px(x + bar_width / 2),
            amounts,
            total: Money::from_cents(month_totals[i]).to_string(),
        });
    }
    let ticks = (0..=TICKS)
        .map(|t| {
            let y = PLOT_BOTTOM * 10 - scale(step * t);
            TickView {
                y: px(y),
                label_y: px(y + 40),
                label: whole_euros(Money::from_cents(step * t)),
            }
        })
        .collect();
    // The legend flows left to right and wraps; widths are estimated from the names' length.
    let (mut legend_x, mut legend_row) = (PLOT_LEFT * 10, 0i64);
    let series: Vec<SeriesView> = gateways
        .iter()
        .enumerate()
        .map(|(s, gateway)| {
            let (colour, hatch) = PALETTE[s % PALETTE.len()];
            let name = names
                .get(gateway)
                .cloned()
                .unwrap_or_else(|| gateway.clone());
            let width = (18 + i64::try_from(name.chars().count()).unwrap_or(40) * 7 + 16) * 10;
            if legend_x > PLOT_LEFT * 10 && legend_x + width > PLOT_RIGHT * 10 {
                legend_row += 1;
                legend_x = PLOT_LEFT * 10;
            }
            let y = (LEGEND_Y + legend_row * LEGEND_ROW) * 10;
            let view = SeriesView {
                gateway: gateway.clone(),
                name,
                colour,
                hatch,
                legend_x: px(legend_x),
                legend_box_y: px(y - 110),
                legend_text_x: px(legend_x + 180),
                legend_y: px(y),
                total: Money::from_cents(months.iter().map(|m| amount(m, gateway)).sum())
                    .to_string(),
            };
            legend_x += width;
            view
        })
        .collect();
    let total: i64 = month_totals.iter().sum();
    CollectionsChart {
        width: WIDTH,
        height: LEGEND_Y + legend_row * LEGEND_ROW + 12,
        plot_left: PLOT_LEFT,
        plot_right: PLOT_RIGHT,
        plot_bottom: PLOT_BOTTOM,
        legend_y: LEGEND_Y,
        series,
        bars,
        ticks,
        first_month: months.first().map(|m| month_name(m)).unwrap_or_default(),
        last_month: months.last().map(|m| month_name(m)).unwrap_or_default(),
        months: month_views,
        total: Money::from_cents(total).to_string(),
        is_empty: total == 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collected(month: &str, gateway: &str, cents: i64) -> Collected {
        Collected {
            month: month.into(),
            gateway: gateway.into(),
            amount: Money::from_cents(cents),
        }
    }

    #[test]
    fn twelve_months_end_with_this_one() {
        let months = last_twelve_months("2026-03-15");
        assert_eq!(months.len(), 12);
        assert_eq!(months[0], "2025-04");
        assert_eq!(months[11], "2026-03");
        assert_eq!(last_twelve_months("2026-12-01")[0], "2026-01");
        assert_eq!(month_name("2026-08"), "août 2026");
    }

    #[test]
    fn segments_stack_up_to_the_month_total() {
        let months = last_twelve_months("2026-03-15");
        let data = [
            collected("2026-03", "sandbox", 3000),
            collected("2026-03", "paypal", 1000),
            collected("2026-01", "paypal", 500),
            collected("2024-01", "paypal", 999_999),
        ];
        let chart = build(&months, &data, &BTreeMap::new());
        assert_eq!(chart.series.len(), 2);
        assert_eq!(chart.bars.len(), 3);
        assert_eq!(chart.total, "45,00 €");
        assert_eq!(chart.months[11].total, "40,00 €");
        // 40 € on an axis of 4 ticks of 10 €: the stack fills the plot exactly.
        assert_eq!(chart.ticks.last().unwrap().label, "40 €");
        let march: Vec<&BarView> = chart.bars.iter().filter(|b| b.month == "2026-03").collect();
        let height: f64 = march.iter().map(|b| b.height.parse::<f64>().unwrap()).sum();
        assert!((height - f64::from(i32::try_from(PLOT_BOTTOM - PLOT_TOP).unwrap())).abs() < 0.01);
        assert!(
            march
                .iter()
                .any(|b| b.title == "paypal, mars 2026 : 10,00 €")
        );
    }

    #[test]
    fn a_long_legend_wraps() {
        let months = last_twelve_months("2026-03-15");
        let gateways = ["a", "b", "c", "d", "e", "f", "g", "h"];
        let data: Vec<Collected> = gateways
            .iter()
            .map(|g| collected("2026-03", g, 100))
            .collect();
        let names = gateways
            .iter()
            .map(|g| (g.to_string(), format!("Moyen de paiement {g}")))
            .collect();
        let chart = build(&months, &data, &names);
        assert!(chart.height > LEGEND_Y + 12);
        assert_ne!(chart.series[0].legend_y, chart.series[7].legend_y);
        assert!(chart.series.iter().all(|s| {
            let x: f64 = s.legend_x.parse().unwrap();
            x < f64::from(i32::try_from(PLOT_RIGHT).unwrap())
        }));
    }

    #[test]
    fn nothing_collected_is_an_empty_chart() {
        let chart = build(&last_twelve_months("2026-03-15"), &[], &BTreeMap::new());
        assert!(chart.is_empty);
        assert!(chart.bars.is_empty());
        assert_eq!(chart.ticks.len(), 5);
    }

    #[test]
    fn months_and_amounts_follow_the_language() {
        use crate::i18n::{Lang, sync_scope};
        let months = last_twelve_months("2026-03-15");
        let data = [collected("2026-03", "paypal", 4000)];
        let chart = sync_scope(Lang::En, || build(&months, &data, &BTreeMap::new()));
        assert_eq!(chart.months[11].name, "Mar 2026");
        assert_eq!(chart.months[11].short, "Mar 26");
        assert_eq!(chart.ticks.last().unwrap().label, "€40");
        assert_eq!(chart.bars[0].title, "paypal, Mar 2026: €40.00");
        assert_eq!(
            sync_scope(Lang::Fr, || whole_euros(Money::from_cents(150_000))),
            "1 500 €"
        );
    }

    #[test]
    fn ticks_are_round() {
        assert_eq!(tick_step(0), 100);
        assert_eq!(tick_step(4000), 1000);
        assert_eq!(tick_step(4001), 2000);
        assert_eq!(tick_step(123_456), 50_000);
    }
}
