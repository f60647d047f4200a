"""The contextual `model` method's pure core: contact profiles, features, the Bayesian
click and conversion models, their metrics and promotion gate, scoring and predictions.

The pieces, in the order data flows through them:

- `profile`: one `ContactProfile` per (account, contact), folded from the contact's
  sends, clicks and conversions by `apply_profile_events` (exact under replay, bounded,
  with a retention), and `record`: its stored bytes (`encode` / `records` for a batch).
- `selector.custom_fields` (outside this package, as `selector.domain`'s settings hold
  them): custom fields an account declares, and their values as profile slots.
- `features`: a batch of profile records at decision times -> contact features and
  contact-creative features, as arrays.
- `examples`: the event history -> point-in-time training examples; `train`: the
  candidate model and its held-out metrics; `metrics`: log loss, normalized entropy,
  AUC, calibration, revenue errors, feature importances, and the promotion `gate`.
- `logistic`: Bayesian logistic regression with a Laplace posterior, fitted by Newton's
  method; `artifact`: the versioned `ContextualModel` value and its serialization.
- `scoring`: contextual Thompson sampling for a batch, with exact propensities given the
  batch's draws; `predict`: per-contact predictions with intervals.

Only the standard library and numpy.
"""

from selector.custom_fields import CategoricalField, CustomField, NumericField, to_slots
from selector.model.artifact import ContextualModel, FeatureSpec, Priors, from_bytes, from_dict
from selector.model.examples import OutcomeEvent, examples_from_events
from selector.model.metrics import Evaluation, Verdict, gate
from selector.model.predict import describe, predictions
from selector.model.profile import EMPTY, ContactProfile, apply_profile_events
from selector.model.record import decode, encode, records, with_custom
from selector.model.train import Examples, TrainingConfig, evaluate_model, train

__all__ = [
    "EMPTY",
    "CategoricalField",
    "ContactProfile",
    "ContextualModel",
    "CustomField",
    "Evaluation",
    "Examples",
    "FeatureSpec",
    "NumericField",
    "OutcomeEvent",
    "Priors",
    "TrainingConfig",
    "Verdict",
    "apply_profile_events",
    "decode",
    "describe",
    "encode",
    "evaluate_model",
    "examples_from_events",
    "from_bytes",
    "from_dict",
    "gate",
    "predictions",
    "records",
    "to_slots",
    "train",
    "with_custom",
]
