"""The model registry (docs/maintainers.md): trained models with their checks, promotion and
rollback, the training job's queue and callbacks, and the model server Rasa pulls from."""
