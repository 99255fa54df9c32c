//! Event types and the score components they feed: one table, below, from
//! which everything else about a type is derived (its schema name, its
//! label for people, the component it moves, its role in scoring and its
//! row on the timeline). Adding a type is a line in [`event_types!`]'s
//! table and, for a decaying type, its weights in `engine::model`.

use serde::{Serialize, Serializer};
use std::fmt;

/// Declares [`EventType`] and its attributes from one table.
macro_rules! event_types {
    ($(
        $(#[$doc:meta])*
        $variant:ident => $name:literal, $label:literal, $component:ident, $role:expr, $row:expr;
    )*) => {
        /// What happened. The names are schema v1's `type` values.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum EventType {
            $($(#[$doc])* $variant,)*
        }

        impl EventType {
            /// Every type, in declaration order (the schema's order).
            pub const ALL: [EventType; [$(EventType::$variant),*].len()] = [$(EventType::$variant),*];

            /// The schema v1 name.
            pub const fn as_str(self) -> &'static str {
                match self { $(EventType::$variant => $name,)* }
            }

            /// What the type is, for people.
            pub const fn label(self) -> &'static str {
                match self { $(EventType::$variant => $label,)* }
            }

            /// The score component this event type moves.
            pub const fn component(self) -> Component {
                match self { $(EventType::$variant => Component::$component,)* }
            }

            /// What role the event plays in the scoring model.
            pub const fn role(self) -> Role {
                match self { $(EventType::$variant => $role,)* }
            }

            /// The timeline row that marks events of this type, if any.
            pub const fn timeline_row(self) -> Option<TimelineRow> {
                match self { $(EventType::$variant => $row,)* }
            }
        }
    };
}

use BanKind::{Export, Purchase};
use Role::{Ban, Decaying, Licence, Lift};
use TimelineRow::{DomesticAdoption as Adoption, ExportBans, PurchaseBans, Relief, Roadmaps};

event_types! {
    // variant          => schema name,            label,                   component,      role,            timeline row
    ExportBan           => "export_ban",           "export ban",            ExportControls, Ban(Export),     Some(ExportBans);
    ExportBanLifted     => "export_ban_lifted",    "export ban lifted",     ExportControls, Lift(Export),    Some(Relief);
    LicenseGranted      => "license_granted",      "licence granted",       ExportControls, Licence,         Some(Relief);
    PurchaseBan         => "purchase_ban",         "purchase ban",          ChinaPolicy,    Ban(Purchase),   Some(PurchaseBans);
    PurchaseBanLifted   => "purchase_ban_lifted",  "purchase ban lifted",   ChinaPolicy,    Lift(Purchase),  Some(Relief);
    ProcurementPressure => "procurement_pressure", "procurement pressure",  ChinaPolicy,    Decaying,        None;
    AntitrustAction     => "antitrust_action",     "antitrust action",      ChinaPolicy,    Decaying,        None;
    DomesticAdoption    => "domestic_adoption",    "domestic adoption",     Competition,    Decaying,        Some(Adoption);
    CompetitorRoadmap   => "competitor_roadmap",   "competitor roadmap",    Competition,    Decaying,        Some(Roadmaps);
    SupplyConstraint    => "supply_constraint",    "supply constraint",     Supply,         Decaying,        None;
    MarketSignal        => "market_signal",        "market signal",         Market,         Decaying,        None;
}

impl EventType {
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// Whether a timeline marks events of this type: what changes a
    /// vendor's standing in China, rather than the steady pressure of
    /// market news.
    pub const fn on_timeline(self) -> bool {
        self.timeline_row().is_some()
    }
}

/// The timeline's rows under the score chart, top to bottom: one per kind
/// of move, some shared by several event types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TimelineRow {
    ExportBans,
    /// Bans lifted and licences granted.
    Relief,
    PurchaseBans,
    DomesticAdoption,
    Roadmaps,
}

impl TimelineRow {
    pub const ALL: [TimelineRow; 5] = [
        TimelineRow::ExportBans,
        TimelineRow::Relief,
        TimelineRow::PurchaseBans,
        TimelineRow::DomesticAdoption,
        TimelineRow::Roadmaps,
    ];

    /// The legend's words for the row.
    pub const fn label(self) -> &'static str {
        match self {
            TimelineRow::ExportBans => "export bans",
            TimelineRow::Relief => "bans lifted, licences",
            TimelineRow::PurchaseBans => "purchase bans",
            TimelineRow::DomesticAdoption => "domestic adoption",
            TimelineRow::Roadmaps => "roadmaps",
        }
    }

    /// The row's colour (CSS), distinct from the score series' colours.
    pub const fn colour(self) -> &'static str {
        match self {
            TimelineRow::ExportBans => "#B00020",
            TimelineRow::Relief => "#1B7F3B",
            TimelineRow::PurchaseBans => "#E65100",
            TimelineRow::DomesticAdoption => "#6A1B9A",
            TimelineRow::Roadmaps => "#455A64",
        }
    }

    pub const fn index(self) -> usize {
        self as usize
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

/// Declares [`Component`] and its attributes from one table.
macro_rules! components {
    ($(
        $(#[$doc:meta])*
        $variant:ident => $name:literal, $label:literal, $column:literal;
    )*) => {
        /// The named parts a score is made of.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Component {
            $($(#[$doc])* $variant,)*
        }

        impl Component {
            /// Every component, in declaration order ([`Component::index`]).
            pub const ALL: [Component; [$(Component::$variant),*].len()] = [$(Component::$variant),*];

            /// The name in metrics and the API.
            pub const fn as_str(self) -> &'static str {
                match self { $(Component::$variant => $name,)* }
            }

            /// What the component is, for people.
            pub const fn label(self) -> &'static str {
                match self { $(Component::$variant => $label,)* }
            }

            /// A terminal column's heading, at most six letters.
            pub const fn column(self) -> &'static str {
                match self { $(Component::$variant => $column,)* }
            }
        }
    };
}

components! {
    /// US export bans, their lifting, and licences.
    ExportControls => "export_controls", "export controls", "EXPORT";
    /// Chinese state action: purchase bans, procurement pressure, antitrust.
    ChinaPolicy => "china_policy", "china policy", "CHINA";
    /// Buyers moving to domestic chips, and rivals' roadmaps.
    Competition => "competition", "competition", "COMPET";
    /// Manufacturing and supply constraints.
    Supply => "supply", "supply", "SUPPLY";
    /// Market signals (orders, guidance, prices).
    Market => "market", "market", "MARKET";
}

impl Component {
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
    fn every_timeline_row_marks_some_type_and_rows_keep_their_order() {
        for (i, row) in TimelineRow::ALL.into_iter().enumerate() {
            assert_eq!(row.index(), i);
            assert!(EventType::ALL.iter().any(|t| t.timeline_row() == Some(row)), "{row:?} marks nothing");
        }
    }

    #[test]
    fn standing_types_are_all_on_the_timeline() {
        for t in EventType::ALL {
            if !matches!(t.role(), Role::Decaying) {
                assert!(t.on_timeline(), "{t} changes standing but is not on the timeline");
            }
        }
    }

    #[test]
    fn component_indices_follow_the_declaration_order() {
        for (i, c) in Component::ALL.into_iter().enumerate() {
            assert_eq!(c.index(), i);
        }
    }
}
