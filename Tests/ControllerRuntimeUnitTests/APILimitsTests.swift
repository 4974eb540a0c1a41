import ControllerRuntime
import Foundation
import KubernetesClient
import KubernetesTesting
import TestSupport
import Testing

/// What the API server refuses must never be written: a condition message past its
/// `maxLength`, an Event note past 1,024 bytes, an Event name past 253 characters.
@Suite("API limits on what the operator writes")
struct APILimitsTests {
    @Test("a condition message is cut to 32,768 code points (an S3 error body can be megabytes); a short one is kept whole")
    func conditionMessage() {
        var conditions: [Condition] = []
        conditions.set(type: "Failed", status: .true, reason: "UploadFailed", message: String(repeating: "x", count: 1_000_000), now: Date())
        let message = conditions[type: "Failed"]?.message ?? ""
        #expect(message.unicodeScalars.count == APILimits.conditionMessage)
        #expect(message.hasSuffix("…"))
        conditions.set(type: "Failed", status: .true, reason: "UploadFailed", message: "short", now: Date())
        #expect(conditions[type: "Failed"]?.message == "short")
        // Cut at a character boundary: a flag (two scalars) is kept whole or dropped.
        #expect(String(repeating: "🇩🇪", count: 20).truncated(toScalars: 8) == String(repeating: "🇩🇪", count: 3) + "…")
    }

    @Test("an Event about an object with a 253-character name, with a 10 KB note of two-byte characters: a valid name, a note of at most 1,024 bytes")
    func eventLimits() async throws {
        let api = InMemoryKubernetesAPI()
        let recorder = EventRecorder(client: api, reportingController: "c", reportingInstance: "i", logger: quietLogger("events"))
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await recorder.run() }
            // 253 characters; cut after the dash when the random suffix has its usual 16 digits.
            let name = String(repeating: "a", count: 235) + "-" + String(repeating: "b", count: 17)
            let regarding = EventRecorder.Regarding(apiVersion: "v1", kind: "ConfigMap", namespace: "default", name: name, uid: nil)
            recorder.record(regarding, type: .warning, reason: "UploadFailed", action: "Backup", note: String(repeating: "é", count: 5_000))
            await recorder.flush()
            let events = try await api.listAll(GenericObject.self, .events, namespace: "default").items
            #expect(events.count == 1)
            let event = try #require(events.first)
            let eventName = event.metadata.name ?? ""
            #expect(eventName.count <= APILimits.objectName, "\(eventName.count)")
            #expect(eventName.hasPrefix(String(repeating: "a", count: 230)) && !eventName.contains("-."), "\(eventName)")
            guard case .string(let note)? = event.raw["note"] else { Issue.record("no note"); return }
            #expect(note.utf8.count <= APILimits.eventNote && note.utf8.count > APILimits.eventNote - 4)
            #expect(note.hasPrefix("éé") && note.hasSuffix("…"))
            group.cancelAll()
        }
    }
}
