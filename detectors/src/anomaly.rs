//! TODO(helper): anomaly
