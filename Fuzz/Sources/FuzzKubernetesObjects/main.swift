import Foundation
import KubernetesCore
import CustomResources

/// Kubernetes JSON as the operator reads it: a tenant's schedule or backup, a list, a Status,
/// a Secret (any object, as a tree), the lines of a watch, and a manifest given to the CLI.
/// The first byte picks what the rest is read as. Reading gives a value or an error, never a
/// trap; an object that reads is validated and defaulted without trapping and encodes to JSON
/// that reads back as the same object; a watch gives the same events whatever chunks its
/// bytes arrive in.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzKubernetesObjects(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let input = UnsafeRawBufferPointer(start: start, count: count)
    guard let selector = input.first else { return 0 }
    let bytes = Data(input.dropFirst())
    let decoder = JSONDecoder()
    switch selector % 8 {
    case 0:
        if let schedule = try? decoder.decode(TalosEtcdBackupSchedule.self, from: bytes) { exercise(schedule) }
    case 1:
        if let backup = try? decoder.decode(TalosEtcdBackup.self, from: bytes) { exercise(backup) }
    case 2:
        if let list = try? decoder.decode(ObjectList<TalosEtcdBackupSchedule>.self, from: bytes) { list.items.forEach(exercise) }
    case 3:
        if let list = try? decoder.decode(ObjectList<TalosEtcdBackup>.self, from: bytes) { list.items.forEach(exercise) }
    case 4:
        _ = try? decoder.decode(Status.self, from: bytes)
        // A GenericObject is written with its metadata as ObjectMeta carries it (an object
        // without one gains `metadata: {}`): once written, it reads back as itself.
        if let object = try? decoder.decode(GenericObject.self, from: bytes),
           let written = try? JSONEncoder().encode(object), let normalized = try? decoder.decode(GenericObject.self, from: written) {
            roundTrip(normalized)
        }
    case 5:
        watch(bytes, chunkSeed: selector)
    case 6:
        if let schedule = try? StrictDecoding.decode(TalosEtcdBackupSchedule.self, from: bytes) { exercise(schedule) }
    default:
        if let backup = try? StrictDecoding.decode(TalosEtcdBackup.self, from: bytes) { exercise(backup) }
    }
    return 0
}

func exercise(_ schedule: TalosEtcdBackupSchedule) {
    _ = schedule.validate()
    _ = schedule.spec.withDefaults().validate(at: "spec")
    _ = schedule.spec.effectiveConcurrencyPolicy
    roundTrip(schedule)
}

func exercise(_ backup: TalosEtcdBackup) {
    _ = backup.validate()
    _ = backup.spec.withDefaults().validate(at: "spec")
    roundTrip(backup)
}

func roundTrip<T: Codable & Equatable>(_ value: T) {
    do {
        let encoded = try JSONEncoder().encode(value)
        let decoded = try JSONDecoder().decode(T.self, from: encoded)
        precondition(decoded == value, "\(T.self) does not round-trip through JSON")
    } catch {
        preconditionFailure("a decoded \(T.self) does not encode and decode again: \(error)")
    }
}

/// The events of `bytes` read in one chunk and in chunks of 1 to 64 bytes: the same kinds, in
/// the same order, ending in the same way.
func watch(_ bytes: Data, chunkSeed: UInt8) {
    func events(chunkSize: (Int) -> Int) -> (kinds: [String], failed: Bool) {
        var decoder = WatchEventDecoder<TalosEtcdBackupSchedule>()
        var kinds: [String] = []
        var offset = 0
        var round = 0
        do {
            while offset < bytes.count {
                let size = min(bytes.count - offset, max(1, chunkSize(round)))
                try decoder.append(bytes[bytes.startIndex + offset ..< bytes.startIndex + offset + size])
                offset += size
                round += 1
                while let event = try decoder.next() { kinds.append(kind(event)) }
            }
            if let event = try decoder.finish() { kinds.append(kind(event)) }
            return (kinds, false)
        } catch {
            return (kinds, true)
        }
    }
    let whole = events { _ in Int.max }
    let pieces = events { round in (Int(chunkSeed) &* 31 &+ round &* 17) % 64 + 1 }
    precondition(whole.kinds == pieces.kinds && whole.failed == pieces.failed, "a watch reads differently in chunks")
}

func kind(_ event: WatchEvent<TalosEtcdBackupSchedule>) -> String {
    switch event {
    case .added(let object): "ADDED \(object.metadata.name ?? "")"
    case .modified(let object): "MODIFIED \(object.metadata.name ?? "")"
    case .deleted(let object): "DELETED \(object.metadata.name ?? "")"
    case .bookmark(let version): "BOOKMARK \(version)"
    case .error(let status): "ERROR \(status.code ?? 0)"
    case .undecodable(let type, let object): "UNDECODABLE \(type) \(object.error)"
    }
}
