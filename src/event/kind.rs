//! Event types and the score components they feed.

use serde::{Serialize, Serializer};
use std::fmt;

/// What happened. The names are schema v1's `type` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventType {
    ExportBan,
    ExportBanLifted,
    LicenseGranted,
    PurchaseBan,
    PurchaseBanLifted,
    ProcurementPressure,
    AntitrustAction,
    DomesticAdoption,
    CompetitorRoadmap,
    SupplyConstraint,
    MarketSignal,
}

impl EventType {
    pub const ALL: [EventType; 11] = [
        EventType::ExportBan,
        EventType::ExportBanLifted,
        EventType::LicenseGranted,
        EventType::PurchaseBan,
        EventType::PurchaseBanLifted,
        EventType::ProcurementPressure,
        EventType::AntitrustAction,
        EventType::DomesticAdoption,
        EventType::CompetitorRoadmap,
        EventType::SupplyConstraint,
        EventType::MarketSignal,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::ExportBan => "export_ban",
            EventType::ExportBanLifted => "export_ban_lifted",
            EventType::LicenseGranted => "license_granted",
            EventType::PurchaseBan => "purchase_ban",
            EventType::PurchaseBanLifted => "purchase_ban_lifted",
            EventType::ProcurementPressure => "procurement_pressure",
            EventType::AntitrustAction => "antitrust_action",
            EventType::DomesticAdoption => "domestic_adoption",
            EventType::CompetitorRoadmap => "competitor_roadmap",
            EventType::SupplyConstraint => "supply_constraint",
            EventType::MarketSignal => "market_signal",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// The score component this event type moves.
    pub fn component(self) -> Component {
        match self {
            EventType::ExportBan | EventType::ExportBanLifted | EventType::LicenseGranted => Component::ExportControls,
            EventType::PurchaseBan
            | EventType::PurchaseBanLifted
            | EventType::ProcurementPressure
            | EventType::AntitrustAction => Component::ChinaPolicy,
            EventType::DomesticAdoption | EventType::CompetitorRoadmap => Component::Competition,
            EventType::SupplyConstraint => Component::Supply,
            EventType::MarketSignal => Component::Market,
        }
    }

    /// What role the event plays in the scoring model.
    pub fn role(self) -> Role {
        match self {
            EventType::ExportBan => Role::Ban(BanKind::Export),
            EventType::PurchaseBan => Role::Ban(BanKind::Purchase),
            EventType::ExportBanLifted => Role::Lift(BanKind::Export),
            EventType::PurchaseBanLifted => Role::Lift(BanKind::Purchase),
            EventType::LicenseGranted => Role::Licence,
            _ => Role::Decaying,
        }
    }
}

/// How an event type takes part in scoring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A standing condition that holds until lifted.
    Ban(BanKind),
    /// Ends matching bans.
    Lift(BanKind),
    /// Partial relief of matching export bans.
    Licence,
    /// A contribution that decays with a half-life.
    Decaying,
}

/// The two kinds of standing ban.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BanKind {
    /// US export controls on the vendor's products to China.
    Export,
    /// Chinese instructions to buyers not to purchase the vendor's products.
    Purchase,
}

impl BanKind {
    pub const ALL: [BanKind; 2] = [BanKind::Export, BanKind::Purchase];

    pub fn as_str(self) -> &'static str {
        match self {
            BanKind::Export => "export",
            BanKind::Purchase => "purchase",
        }
    }
}

/// The named parts a score is made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Component {
    /// US export bans, their lifting, and licences.
    ExportControls,
    /// Chinese state action: purchase bans, procurement pressure, antitrust.
    ChinaPolicy,
    /// Buyers moving to domestic chips, and rivals' roadmaps.
    Competition,
    /// Manufacturing and supply constraints.
    Supply,
    /// Market signals (orders, guidance, prices).
    Market,
}

impl Component {
    pub const ALL: [Component; 5] = [
        Component::ExportControls,
        Component::ChinaPolicy,
        Component::Competition,
        Component::Supply,
        Component::Market,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Component::ExportControls => "export_controls",
            Component::ChinaPolicy => "china_policy",
            Component::Competition => "competition",
            Component::Supply => "supply",
            Component::Market => "market",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

macro_rules! display_and_serialize_as_str {
    ($($t:ty),*) => {$(
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
    )*};
}
display_and_serialize_as_str!(EventType, BanKind, Component);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_round_trips_through_its_name() {
        for t in EventType::ALL {
            assert_eq!(EventType::parse(t.as_str()), Some(t));
        }
        assert_eq!(EventType::parse("Export_Ban"), None);
    }

    #[test]
    fn component_indices_follow_the_declaration_order() {
        for (i, c) in Component::ALL.into_iter().enumerate() {
            assert_eq!(c.index(), i);
        }
    }
}
