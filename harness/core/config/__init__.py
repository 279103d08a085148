"""The job configuration (``harness.core.config`` stays the public module path): the sections and the job
(:mod:`.sections`), loading with YAML layering and overrides (:mod:`.load`), and ``--explain`` (:mod:`.explain`)."""
from harness.core.config.explain import descriptions, explain
from harness.core.config.load import (CONFIG_DIR, SHORT_KEYS, apply_override, build_section, dump_config, layered,
                                 load_config, packaged_configs, read_yaml)
from harness.core.config.sections import (FLOWER_KEY, LORA_TARGETS, AggregatorConfig, Benchmark, ClientConfig,
                                     DataConfig, EvalConfig, FederationConfig, InitConfig, JobConfig, JudgeConfig,
                                     LaunchConfig, LoggerName, LoggingConfig, LoraSettings, ModelConfig,
                                     PrivacyConfig, SlurmResources, _flatten, hparams_key)

__all__ = ["descriptions", "explain", "CONFIG_DIR", "SHORT_KEYS", "apply_override", "build_section", "dump_config",
           "layered", "load_config", "packaged_configs", "read_yaml", "FLOWER_KEY", "LORA_TARGETS",
           "AggregatorConfig", "Benchmark", "ClientConfig", "DataConfig", "EvalConfig", "FederationConfig",
           "InitConfig", "JobConfig", "JudgeConfig", "LaunchConfig", "LoggerName", "LoggingConfig", "LoraSettings",
           "ModelConfig", "PrivacyConfig", "SlurmResources", "_flatten", "hparams_key"]
