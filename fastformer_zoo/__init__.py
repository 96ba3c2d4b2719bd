"""The application around the model: data, settings, training, evaluation, export and prediction.

It uses the model package; the model package never uses it. Sub-packages: :mod:`.data` (readers that
import no paddle, dataset preparation, synthetic reviews, the training data loader), :mod:`.engine`
(checkpoints, training, evaluation, metrics, multi-seed experiments), :mod:`.deploy` (export and
prediction) and :mod:`.serving` (the HTTP prediction service and its load test). Every error a user can fix is a :class:`~.errors.UserError` with a one-line message.
"""
