-- `baton rollout resume`.
obj.spec.paused = false
return obj
