-- `baton rollout pause`: no batch starts until resumed.
obj.spec.paused = true
return obj
