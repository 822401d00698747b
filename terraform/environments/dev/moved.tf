# State addresses from before the environments called modules/stack, so that existing
# resources are moved in place rather than destroyed and created again.

moved {
  from = module.network
  to   = module.stack.module.network
}

moved {
  from = module.secrets
  to   = module.stack.module.secrets
}

moved {
  from = module.database
  to   = module.stack.module.database
}

moved {
  from = module.cache
  to   = module.stack.module.cache
}

moved {
  from = module.storage
  to   = module.stack.module.storage
}

moved {
  from = module.messaging
  to   = module.stack.module.messaging
}

moved {
  from = module.compute
  to   = module.stack.module.compute
}

moved {
  from = module.monitoring
  to   = module.stack.module.monitoring
}
