//! TODO(helper): patterns
