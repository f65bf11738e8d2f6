-- The actions Argo CD offers on a baton.dev Rollout, as `baton rollout` offers them: each
-- enabled only when it has something to act on (the controller ignores it otherwise).
local actions = {}
local status = obj.status or {}
local phase = status.phase
local paused = obj.spec ~= nil and obj.spec.paused == true
local moving = phase == "Progressing" or phase == "Paused"

actions["promote"] = {["disabled"] = phase ~= "Paused"}
actions["promote-full"] = {["disabled"] = not moving}
actions["abort"] = {["disabled"] = not moving}
actions["retry"] = {["disabled"] = status.failedUpdate == nil}
actions["restart"] = {["disabled"] = false}
actions["pause"] = {["disabled"] = paused}
actions["resume"] = {["disabled"] = not paused}
return actions
