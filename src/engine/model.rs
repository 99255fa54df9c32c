//! The scoring model's parameters: weights, default severities, half-lives.
//! They are configuration (`scoring.*`); `docs/scoring.md` explains and
//! defends the defaults.

use crate::event::{BanKind, EventType, Role};
use serde::{Deserialize, Serialize};

/// Every parameter of the scoring model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScoringModel {
    /// Pressure at which a score reaches 63.2: score = 100 * (1 - exp(-pressure / scale)).
    pub scale: f64,
    /// US export ban on the vendor's products (standing until lifted).
    pub export_ban: BanModel,
    /// Chinese instruction to buyers not to purchase (standing until lifted).
    pub purchase_ban: BanModel,
    /// Export licence granted: partial relief of matching export bans.
    pub license_granted: LicenceModel,
    /// Chinese regulators steering buyers away (security reviews, guidance).
    pub procurement_pressure: DecayModel,
    /// Antitrust investigations and rulings against the vendor.
    pub antitrust_action: DecayModel,
    /// Chinese buyers adopting domestic chips instead of the vendor's.
    pub domestic_adoption: DecayModel,
    /// Rivals' roadmaps that threaten the vendor's China business.
    pub competitor_roadmap: DecayModel,
    /// Manufacturing or supply constraints (e.g. SMIC capacity).
    pub supply_constraint: DecayModel,
    /// Market signals; the event's `value` in [-1, 1] gives the direction.
    pub market_signal: DecayModel,
}

/// Parameters of a standing ban.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BanModel {
    /// Pressure of a vendor-wide ban at severity 1 and confidence 1; also the
    /// most all bans of this kind together can add for one vendor.
    pub weight: f64,
    /// Severity assumed when the event gives none.
    pub default_severity: f64,
    /// Fraction of `weight` a ban on one product carries, against a ban on
    /// the vendor as a whole.
    pub product_share: f64,
}

/// Parameters of export licences.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LicenceModel {
    /// Largest fraction of a matching export ban's pressure a licence removes
    /// (at severity 1 and confidence 1).
    pub relief: f64,
    /// Severity assumed when the event gives none.
    pub default_severity: f64,
}

/// Parameters of a decaying contribution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecayModel {
    /// Pressure at severity 1 and confidence 1, at the moment of the event.
    pub weight: f64,
    /// Severity assumed when the event gives none.
    pub default_severity: f64,
    /// Days after which the contribution has halved.
    pub half_life_days: f64,
}

impl Default for ScoringModel {
    fn default() -> Self {
        let decay = |weight, default_severity, half_life_days| DecayModel { weight, default_severity, half_life_days };
        Self {
            scale: 1.0,
            export_ban: BanModel { weight: 1.6, default_severity: 0.8, product_share: 0.35 },
            purchase_ban: BanModel { weight: 1.2, default_severity: 0.8, product_share: 0.35 },
            license_granted: LicenceModel { relief: 0.6, default_severity: 0.7 },
            procurement_pressure: decay(0.5, 0.6, 90.0),
            antitrust_action: decay(0.6, 0.6, 180.0),
            domestic_adoption: decay(0.4, 0.5, 180.0),
            competitor_roadmap: decay(0.25, 0.5, 120.0),
            supply_constraint: decay(0.4, 0.5, 60.0),
            market_signal: decay(0.3, 0.5, 21.0),
        }
    }
}

impl ScoringModel {
    /// Checks every parameter; the message names the key.
    pub fn validate(&self) -> Result<(), String> {
        let in_range = |key: &str, v: f64, lo: f64, hi: f64| {
            if v.is_finite() && (lo..=hi).contains(&v) {
                Ok(())
            } else {
                Err(format!("scoring.{key} = {v} must be within [{lo}, {hi}]"))
            }
        };
        in_range("scale", self.scale, 1e-6, 1e6)?;
        for (name, m) in [("export_ban", &self.export_ban), ("purchase_ban", &self.purchase_ban)] {
            in_range(&format!("{name}.weight"), m.weight, 0.0, 1e3)?;
            in_range(&format!("{name}.default_severity"), m.default_severity, 0.0, 1.0)?;
            in_range(&format!("{name}.product_share"), m.product_share, 0.0, 1.0)?;
        }
        in_range("license_granted.relief", self.license_granted.relief, 0.0, 1.0)?;
        in_range("license_granted.default_severity", self.license_granted.default_severity, 0.0, 1.0)?;
        for kind in EventType::ALL {
            if let Some(m) = self.decay(kind) {
                in_range(&format!("{kind}.weight"), m.weight, 0.0, 1e3)?;
                in_range(&format!("{kind}.default_severity"), m.default_severity, 0.0, 1.0)?;
                in_range(&format!("{kind}.half_life_days"), m.half_life_days, 1e-3, 36_500.0)?;
            }
        }
        Ok(())
    }

    /// The decay parameters of a decaying type; `None` for bans, lifts and licences.
    pub fn decay(&self, kind: EventType) -> Option<&DecayModel> {
        match kind {
            EventType::ProcurementPressure => Some(&self.procurement_pressure),
            EventType::AntitrustAction => Some(&self.antitrust_action),
            EventType::DomesticAdoption => Some(&self.domestic_adoption),
            EventType::CompetitorRoadmap => Some(&self.competitor_roadmap),
            EventType::SupplyConstraint => Some(&self.supply_constraint),
            EventType::MarketSignal => Some(&self.market_signal),
            _ => None,
        }
    }

    pub fn ban(&self, kind: BanKind) -> &BanModel {
        match kind {
            BanKind::Export => &self.export_ban,
            BanKind::Purchase => &self.purchase_ban,
        }
    }

    /// Severity used for an event: its own, or its type's default. Lifts have none.
    pub fn severity(&self, kind: EventType, given: Option<f64>) -> f64 {
        given.unwrap_or_else(|| match kind.role() {
            Role::Ban(ban) => self.ban(ban).default_severity,
            Role::Licence => self.license_granted.default_severity,
            Role::Lift(_) => 1.0,
            Role::Decaying => self.decay(kind).map_or(1.0, |m| m.default_severity),
        })
    }

    /// Maps total pressure to a score in [0, 100]. Negative pressure (net
    /// positive market news) gives 0.
    pub fn saturate(&self, pressure: f64) -> f64 {
        if pressure <= 0.0 {
            0.0
        } else {
            (100.0 * -(-pressure / self.scale).exp_m1()).clamp(0.0, 100.0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_model_is_valid() {
        ScoringModel::default().validate().unwrap();
    }

    #[test]
    fn validation_names_the_key_at_fault() {
        let mut m = ScoringModel::default();
        m.market_signal.half_life_days = 0.0;
        assert!(m.validate().unwrap_err().starts_with("scoring.market_signal.half_life_days"));
        let mut m = ScoringModel::default();
        m.export_ban.product_share = f64::NAN;
        assert!(m.validate().unwrap_err().contains("export_ban.product_share"));
    }

    #[test]
    fn saturation_is_bounded_and_passes_63_at_the_scale() {
        let m = ScoringModel::default();
        assert_eq!(m.saturate(-3.0), 0.0);
        assert_eq!(m.saturate(0.0), 0.0);
        assert!((m.saturate(1.0) - 63.212).abs() < 1e-3);
        assert_eq!(m.saturate(1e9), 100.0);
    }
}
