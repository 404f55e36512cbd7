"""The statistics of aisre: drift, performance, fairness, importance and LLM quality, in a notebook or a job.

One subpackage per method family, each `__init__` its catalogue:

- `tabular`: any table -> named columns; class labels; stored records joined to late labels; time windows
- `profiles`: mergeable column profiles and a saved `Reference`
- `drift`: univariate drift (nine methods under one `Method` contract) and `drift()` over a table
- `multivariate`: domain classifier, PCA reconstruction, MMD, text drift via embeddings
- `online`: streaming detectors with stated false-alarm rates, count/time windows
- `performance`: realised metrics with intervals from late labels; CBPE estimates without labels
- `fairness`: per-group rates and parity gaps (Fairlearn's numbers)
- `importance`: feature importance per window, ranking shifts, drift impact
- `llm`: LLM output checks, evaluators and quality per window
- `report`: the self-contained HTML drift report
- `jobs`: a stored window -> checks -> signals (store + Prometheus gauges)

Every user-facing name is also here (`aisre.monitor.CBPE`). The three entry points named like
their family are functions on `aisre` itself: `aisre.drift`, `aisre.performance`,
`aisre.fairness` (here they are `drift.drift`, `performance.performance`, `fairness.fairness`,
because `aisre.monitor.drift` is the package).
"""

from aisre.monitor import (
    drift,
    fairness,
    importance,
    jobs,
    llm,
    multivariate,
    online,
    performance,
    profiles,
    report,
    tabular,
)
from aisre.monitor.drift import (
    KS,
    METHODS,
    PSI,
    AndersonDarling,
    ChiSquare,
    ConstantThreshold,
    CramerVonMises,
    DatasetDrift,
    DriftResult,
    Hellinger,
    JensenShannon,
    LInfinity,
    Method,
    StdThreshold,
    Wasserstein,
    ZTest,
    get_method,
)
from aisre.monitor.fairness import FairnessReport, GroupMetrics, fairness_over_time
from aisre.monitor.importance import (
    DriftImpact,
    FeatureImportance,
    ImportanceShift,
    compare_importance,
    drift_impact,
    model_importance,
    permutation_importance,
    window_importance,
)
from aisre.monitor.jobs import WindowCheck, check_window, publish
from aisre.monitor.llm import (
    EvaluationResult,
    Evaluator,
    LLMQualityReport,
    ResponseChecker,
    ResponseFlags,
    llm_quality,
)
from aisre.monitor.multivariate import (
    Embedder,
    MultivariateDriftResult,
    domain_classifier_drift,
    embedding_drift,
    mmd_drift,
    multivariate_drift,
    reconstruction_drift,
)
from aisre.monitor.online import (
    BootstrapCalibrated,
    CountWindows,
    Cusum,
    Detector,
    OnlineDrift,
    ProfileDistance,
    TimeWindows,
    WindowTest,
    WindowVerdict,
)
from aisre.monitor.performance import CBPE, CBPEReport, Estimate, MetricValue, PerformanceReport, performance_over_time
from aisre.monitor.profiles import CategoricalProfile, NumericProfile, Reference, fit_profile
from aisre.monitor.report import drift_report_html
from aisre.monitor.tabular import OverTime, WindowResult, to_columns

__all__ = [
    "CBPE",
    "KS",
    "METHODS",
    "PSI",
    "AndersonDarling",
    "BootstrapCalibrated",
    "CBPEReport",
    "CategoricalProfile",
    "ChiSquare",
    "ConstantThreshold",
    "CountWindows",
    "CramerVonMises",
    "Cusum",
    "DatasetDrift",
    "Detector",
    "DriftImpact",
    "DriftResult",
    "Embedder",
    "Estimate",
    "EvaluationResult",
    "Evaluator",
    "FairnessReport",
    "FeatureImportance",
    "GroupMetrics",
    "Hellinger",
    "ImportanceShift",
    "JensenShannon",
    "LInfinity",
    "LLMQualityReport",
    "Method",
    "MetricValue",
    "MultivariateDriftResult",
    "NumericProfile",
    "OnlineDrift",
    "OverTime",
    "PerformanceReport",
    "ProfileDistance",
    "Reference",
    "ResponseChecker",
    "ResponseFlags",
    "StdThreshold",
    "TimeWindows",
    "Wasserstein",
    "WindowCheck",
    "WindowResult",
    "WindowTest",
    "WindowVerdict",
    "ZTest",
    "check_window",
    "compare_importance",
    "domain_classifier_drift",
    "drift",
    "drift_impact",
    "drift_report_html",
    "embedding_drift",
    "fairness",
    "fairness_over_time",
    "fit_profile",
    "get_method",
    "importance",
    "jobs",
    "llm",
    "llm_quality",
    "mmd_drift",
    "model_importance",
    "multivariate",
    "multivariate_drift",
    "online",
    "performance",
    "performance_over_time",
    "permutation_importance",
    "profiles",
    "publish",
    "reconstruction_drift",
    "report",
    "tabular",
    "to_columns",
    "window_importance",
]
