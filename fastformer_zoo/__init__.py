"""The application around the model (what PaddleNLP keeps in ``model_zoo/fastformer/``): data, settings,
training, evaluation, scoring, export, prediction and serving.

It uses the model package, :mod:`paddlenlp_fastformer`; the model never uses it. Sub-packages:
:mod:`.data` (readers that import no paddle, dataset preparation, the training data loader), :mod:`.engine`
(checkpoints, training, evaluation, multi-seed experiments), :mod:`.deploy` (export and prediction, no
training code) and :mod:`.serving` (the HTTP prediction service); beside them :mod:`.settings` (the YAML
config), :mod:`.scoring` (metrics shared by evaluation and deployment), :mod:`.reporting` (results tables
from kept runs) and :mod:`.directories` (replacing directories atomically). Every error a user can fix
is a :class:`~.errors.UserError` with a one-line message.
"""
